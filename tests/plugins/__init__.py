"""Test-only plugins, loaded by the daemons the tests start."""
