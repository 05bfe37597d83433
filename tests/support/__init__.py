"""Test helpers shared across the suite (on sys.path through pytest's pythonpath = ["tests"])."""
