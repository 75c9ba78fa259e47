"""Measure acf beside a naive baseline and LangGraph (``acf bench``, ``make bench-distributed``)."""
