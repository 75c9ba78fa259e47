"""acf: Agent Conversation Fabric.

The names a pipeline or tool author needs, in one place (``from acf import Pipeline, ...``);
the test helpers are in ``acf.testing``. Everything else is internal and may move. Importing
``acf`` loads only the domain and the ports: no web framework, database driver or adapter.
"""

from acf.domain.agent_settings import AgentSettings
from acf.domain.messages import InboundMessage
from acf.domain.replies import Button, FailedCall, PipelineResult, ReplySegment
from acf.domain.supersede import SupersedeDecision
from acf.domain.tools import DedupeScope, Outcome, SideEffectPolicy, ToolResult, ToolSpec
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import (
    InDoubt,
    PendingInput,
    Pipeline,
    SupersedeHook,
    ToolCaller,
    TurnContext,
)
from acf.ports.tool_backend import OutcomeUnknown, Reconciled, Tool, ToolCall
from acf.ports.tool_registry import ToolRegistry
from acf.version import __version__

__all__ = [
    "AgentBinding",
    "AgentSettings",
    "Button",
    "DedupeScope",
    "FailedCall",
    "InDoubt",
    "InboundMessage",
    "Outcome",
    "OutcomeUnknown",
    "PendingInput",
    "Pipeline",
    "PipelineResult",
    "Reconciled",
    "ReplySegment",
    "SideEffectPolicy",
    "SupersedeDecision",
    "SupersedeHook",
    "Tool",
    "ToolCall",
    "ToolCaller",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "TurnContext",
    "__version__",
]
