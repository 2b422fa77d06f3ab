"""Helpers that are not registered components (see each module)."""
