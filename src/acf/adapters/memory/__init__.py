"""In-process adapters: the system clock and wake-ups for embedded mode."""
