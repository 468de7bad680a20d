"""Registered samplers (see ltzoo.registry)."""
