"""Synthetic data for the quickstart and the tests; ``import ssd_plugin``
does not load it (it registers nothing)."""
