"""Worked analyses built on bayeskit's public API (not part of the installed package)."""
