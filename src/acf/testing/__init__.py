"""Public test helpers, so users test their own pipelines the way acf tests itself."""

from acf.testing.clock import VirtualClock

__all__ = ["VirtualClock"]
