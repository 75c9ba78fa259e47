"""Observability: Prometheus metrics derived from the FabricEvents the runtime commits,
OpenTelemetry spans of a turn's phases, and the W3C trace context outbound calls carry."""

from acf.observability.metrics import FabricMetrics

__all__ = ["FabricMetrics"]
