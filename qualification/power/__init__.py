"""Seeded faults that must each turn the suite red (`make power`)."""
