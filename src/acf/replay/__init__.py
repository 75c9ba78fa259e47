"""Replay real chat timing through accumulation and supersede (``acf replay``)."""
