"""Seed 003's ``/ws``: its wire format, its events, and its session (docs/dialects.md)."""
