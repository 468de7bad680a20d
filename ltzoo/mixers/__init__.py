"""Registered mixers (see ltzoo.registry)."""
