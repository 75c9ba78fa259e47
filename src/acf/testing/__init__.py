"""Public test helpers, so users test their own pipelines the way acf tests itself.

``Harness`` runs the embedded runtime on a real SQLite file under a ``VirtualClock`` and
delivers through a ``RecordingChannel``; ``HarnessOptions`` takes your pipeline and your
``ToolRegistry`` (or a ``ScriptedPipeline`` following a ``Script``, and scripted
``ToolBackend``\\ s).
"""

from acf.testing.channel import RecordingChannel
from acf.testing.clock import VirtualClock
from acf.testing.harness import Harness, HarnessOptions
from acf.testing.pipeline import Script, ScriptedPipeline
from acf.testing.tools import ToolBackend

__all__ = [
    "Harness",
    "HarnessOptions",
    "RecordingChannel",
    "Script",
    "ScriptedPipeline",
    "ToolBackend",
    "VirtualClock",
]
