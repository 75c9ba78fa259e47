"""Small statistics shared by the replay and the benchmarks."""

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method); 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
