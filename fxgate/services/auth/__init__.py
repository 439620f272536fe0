"""Authentication: signing keys, JWT access tokens, passwords, API-key signatures."""
