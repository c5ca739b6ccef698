"""A project: its SQLite store, model versions and their stored predictions."""
