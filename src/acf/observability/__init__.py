"""Observability: Prometheus metrics derived from the FabricEvents the runtime commits."""

from acf.observability.metrics import FabricMetrics

__all__ = ["FabricMetrics"]
