"""Pure domain model: no I/O, imports nothing else of acf."""
