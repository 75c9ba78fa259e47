"""The ``agent_service`` pipeline kind: an external agent service over HTTP + SSE (DESIGN
§16, seed 004). It names no file; loading a configuration opens no connection and reads no
secret (the client is made, and ``api_key`` resolved, on the first request).

Its turns read up to ``AGENT_SERVICE_HISTORY_LIMIT`` earlier messages (``history_messages``
and ``history_tokens`` then window them) and may take up to ``AGENT_SERVICE_DEADLINE_MS``
(a service may stream for ``timeouts.stream_s``, 300 s by default, and retries come on
top); the agent's own ``settings`` still win.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acf.config.agent_service import AgentServicePipelineFields
from acf.domain.tools import ToolSpec
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.ports.pipeline import Pipeline

AGENT_SERVICE_HISTORY_LIMIT = 50
AGENT_SERVICE_DEADLINE_MS = 330_000


class AgentServiceKind:
    settings_defaults: Mapping[str, Any] = {
        "history_limit": AGENT_SERVICE_HISTORY_LIMIT,
        "deadline_ms": AGENT_SERVICE_DEADLINE_MS,
    }

    def load(self, fields: Any, where: str, base_dir: Path) -> None:
        assert isinstance(fields, AgentServicePipelineFields)
        return None

    def build(
        self, fields: Any, files: object | None, tools: Sequence[ToolSpec], where: str
    ) -> Pipeline:
        """The service runs its own tools: the agent's acf tools are not offered to it."""
        assert isinstance(fields, AgentServicePipelineFields)
        return AgentServicePipeline(fields)


KIND = AgentServiceKind()
