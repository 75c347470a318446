"""Oversight: risk alerts (and, with them, what regulators and banks watch)."""
