"""Catalogs: read a live one, build the expected one from sql/, diff them, render findings."""
