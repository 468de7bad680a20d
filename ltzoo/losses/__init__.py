"""Registered losses (see ltzoo.registry)."""
