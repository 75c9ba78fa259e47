"""Public test helpers, so users test their own pipelines the way acf tests itself.

``Harness`` runs the embedded runtime on a real SQLite file under a ``VirtualClock`` and
delivers through a ``RecordingChannel``; ``HarnessOptions`` takes your pipeline and your
``ToolRegistry`` (or a ``ScriptedPipeline`` following a ``Script``, and scripted
``ToolBackend``\\ s). ``FakeOpenAI`` is an OpenAI-compatible server on loopback for LLM
agents: scripted answers (``Answer``, ``FakeToolCall``, ``HttpError``, ``CutStream``),
streamed as the real API streams, every request recorded (``FakeRequest``);
``ScriptedModel`` answers an LLM agent in-process on the virtual clock.
``FakeAgentService`` is an agent service on loopback speaking acf's agent service protocol
(DESIGN §16), scripted with the steps of ``acf.testing.fake_agent_steps`` (``Think``,
``Tool``, ``Chunks``, ``Complete``, ``Ask``, ``Error``, ``Sleep``, ``Cut``, ``Reject``).
"""

from acf.testing.channel import RecordingChannel
from acf.testing.clock import VirtualClock
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.fake_openai import FakeOpenAI, FakeRequest, answer_by_model
from acf.testing.fake_openai_script import (
    Answer,
    CutStream,
    FakeToolCall,
    HttpError,
)
from acf.testing.harness import Harness, HarnessOptions
from acf.testing.model import ScriptedAnswer, ScriptedCall, ScriptedModel
from acf.testing.pipeline import Script, ScriptedPipeline
from acf.testing.tools import ToolBackend

__all__ = [
    "Answer",
    "CutStream",
    "FakeAgentService",
    "FakeOpenAI",
    "FakeRequest",
    "FakeToolCall",
    "Harness",
    "HarnessOptions",
    "HttpError",
    "RecordingChannel",
    "Script",
    "ScriptedAnswer",
    "ScriptedCall",
    "ScriptedModel",
    "ScriptedPipeline",
    "ToolBackend",
    "VirtualClock",
    "answer_by_model",
]
