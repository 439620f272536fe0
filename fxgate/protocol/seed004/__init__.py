"""Seed 004's ``/ws/market-data`` and ``/ws/trading``: wire formats and sessions."""
