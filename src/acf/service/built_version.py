"""One tenant's configuration version, built for serving: its agents' bindings, and the
bindings of a scenario's step or a session's runtime override, built on first use.

The composition root builds it (``VersionBuilder``: it knows the pipeline kinds and tool
backends; the service does not). Once published to ``Agents`` it never changes but for
the cache of variants, which only grows up to ``MAX_VARIANTS`` (least recently used out).
"""

import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acf.domain.agent_settings import AgentSettings
from acf.domain.config_versions import ConfigVersion
from acf.domain.errors import AcfError, UnknownAgent
from acf.domain.ids import AgentId
from acf.domain.replies import PipelineResult
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import Pipeline, TurnContext

MAX_VARIANTS = 256
"""Bindings kept per version for (agent, scenario, step, overrides) combinations."""

VariantBuilder = Callable[[AgentId, str | None, str | None, Mapping[str, Any]], AgentBinding]
"""Build the binding of ``agent`` in ``scenario``/``step`` with runtime ``overrides``;
raises ``InvalidValue`` (a ``ConfigError``) naming what does not fit."""

Upcaster = Callable[[Mapping[str, Any]], dict[str, Any]]


def canonical_hash(value: Any) -> str:
    """``"sha256:<16 hex>"`` of the canonical JSON of ``value``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(slots=True, eq=False)
class BuiltVersion:
    """A version of one tenant, ready to serve. ``version``'s content is immutable; its
    status fields are as read when it was built (never consulted: the pointer is)."""

    version: ConfigVersion
    bindings: Mapping[AgentId, AgentBinding]
    variant: VariantBuilder | None = None
    """None: scenarios, steps and overrides are not served (the base binding is)."""
    upcaster: Upcaster | None = None
    """The state upcaster the version declares (``apply: next_turn``), if any."""
    _variants: "OrderedDict[str, AgentBinding]" = field(default_factory=OrderedDict)
    _evicted: list[AgentBinding] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.version.label

    def binding(
        self,
        agent: AgentId,
        scenario: str | None = None,
        step: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> AgentBinding:
        """The agent's binding for a scenario's step with runtime overrides (cached)."""
        base = self.bindings.get(agent)
        if base is None:
            raise UnknownAgent(self.version.tenant, agent)
        overrides = overrides or {}
        if self.variant is None or (scenario is None and step is None and not overrides):
            return base
        key = canonical_hash([agent, scenario, step, overrides])
        found = self._variants.get(key)
        if found is not None:
            self._variants.move_to_end(key)
            return found
        built = self.variant(agent, scenario, step, overrides)
        self._variants[key] = built
        if len(self._variants) > MAX_VARIANTS:
            _, old = self._variants.popitem(last=False)
            self._evicted.append(old)
        return built

    def bindings_now(self) -> list[AgentBinding]:
        """Every binding this version holds (agents and cached variants)."""
        return [*self.bindings.values(), *self._variants.values()]

    def pipelines(self) -> list[Pipeline]:
        """Every pipeline built for this version, evicted variants' included (they may
        still run a turn; they are closed with the version)."""
        seen: dict[int, Pipeline] = {}
        for binding in (*self.bindings_now(), *self._evicted):
            seen.setdefault(id(binding.pipeline), binding.pipeline)
        return list(seen.values())

    def scenario_hash(self, agent: AgentId, scenario: str) -> str | None:
        """The content hash of the scenario as the version resolves it (None: the version
        declares no such scenario)."""
        node: Any = self.version.resolved
        for part in ("agents", agent, "scenarios", scenario):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return canonical_hash(node)


VersionBuilder = Callable[[ConfigVersion], Awaitable[BuiltVersion]]
"""Turns a stored version into its built form (the composition root's)."""


class AgentUnservable(AcfError):
    """No configuration version can serve the session's agent (the error of its turn)."""


class UnservedPipeline:
    """Stands in for an agent no version can serve: every run raises ``AgentUnservable``."""

    name = "unserved"
    version = "0"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def run(self, ctx: TurnContext) -> PipelineResult:
        raise AgentUnservable(self.reason)


def unserved_binding(reason: str) -> AgentBinding:
    """A binding whose turn fails at its first attempt (no retry: the configuration, not
    the moment, is at fault) and ends as a failed turn does: acf's default fallback reply,
    a turn record, a dead letter to replay once the configuration serves the agent again."""
    return AgentBinding(UnservedPipeline(reason), AgentSettings(max_attempts=1))
