"""Pure domain types: no I/O, and no imports of the rest of fxgate."""
