"""The configuration lifecycle's request and response bodies (``routes_config``)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from acf.domain.config_versions import ArmStats, ConfigPointer, ConfigVersion
from acf.entrypoints.http.config_uploads import MAX_FILES
from acf.entrypoints.http.views import EventView, Problem, event_view
from acf.service.canary_status import CanaryStatus, is_automatic

MAX_YAML_CHARS = 512 * 1024


class UploadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        default="acf.yaml",
        max_length=200,
        description="The file's name (errors and the version's source name it).",
    )
    yaml: str = Field(
        min_length=1, max_length=MAX_YAML_CHARS, description="The configuration file's text."
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_FILES,
        description="The files it names (rules, prompts, base agents), by their path "
        'relative to it: `{"support_rules.yaml": "rules: …"}`. No code.',
    )


class PushBody(UploadBody):
    message: str = Field(default="", max_length=2000, description="Why this version.")
    author: str | None = Field(
        default=None, max_length=200, description="Who pushed it (default: the key's name)."
    )
    git_commit: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[0-9a-f]{7,64}$",
        description="The commit of the file's git work tree, if known.",
    )


class ValidationView(BaseModel):
    valid: bool
    problems: list[Problem] = Field(description="Each problem's field and what was expected.")
    content_hash: str | None = Field(description="The version's hash were it pushed.")
    agents: list[str]


class VersionSummary(BaseModel):
    number: int
    label: str = Field(description='"v{number}": what events, logs and metrics carry.')
    status: str = Field(description="draft, live, canary or retired.")
    rolled_back: bool
    content_hash: str
    author: str
    message: str
    git_commit: str | None
    apply: str
    created_at_ms: int
    updated_at_ms: int
    gates: dict[str, Any]


class VersionDetail(VersionSummary):
    source: dict[str, Any] = Field(description="The layers as written, with the files named.")
    resolved: dict[str, Any] = Field(description="The merged, validated configuration.")
    provenance: dict[str, Any] = Field(description="Dotted key → the layer that set it.")


class PushedView(VersionSummary):
    created: bool = Field(description="False: the same content was pushed before as this one.")


class PointerView(BaseModel):
    live: int | None
    previous_live: int | None
    canary: int | None
    canary_share: int
    canary_started_at_ms: int | None
    canary_step_at_ms: int | None
    updated_at_ms: int | None


class VersionList(PointerView):
    items: list[VersionSummary] = Field(description="Newest first.")


class DiffRowView(BaseModel):
    key: str
    change: str = Field(description="added, removed or changed.")
    before: Any = Field(description="Absent in the first version: null.")
    after: Any = Field(description="Absent in the second version: null.")


class DiffView(BaseModel):
    a: str
    b: str
    rows: list[DiffRowView]


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = Field(default=False, description="Without a passed scenarios gate (audited).")


class CanaryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    share: int = Field(ge=1, le=100, description="Percent of new sessions given the version.")
    force: bool = Field(
        default=False,
        description="Start the canary without a passed scenarios gate (audited); "
        "moving a running canary's share needs no gate.",
    )


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    canary: bool = Field(default=False, description="Retire the running canary only.")
    reason: str = Field(default="", max_length=500)


class ArmView(BaseModel):
    turns: int
    failed: int
    fallback: int
    handoff: int
    failure_rate: float
    fallback_rate: float
    handoff_rate: float
    latency_p95_ms: int | None


class RollbackView(BaseModel):
    version: str | None = Field(description='The canary rolled back ("v3").')
    reason: str
    actor: str
    automatic: bool
    at_ms: int
    stats: dict[str, Any]


class CanaryStatusView(PointerView):
    since_ms: int | None = Field(description="When the current share began (stats from here).")
    arms: dict[str, ArmView] = Field(description="`live` and `canary` when a canary runs.")
    decisions: list[EventView] = Field(description="The last lifecycle decisions, newest first.")
    last_rollback: RollbackView | None = Field(
        description="The last canary rollback, when no canary or promote came after it."
    )


class ExplainRowView(BaseModel):
    key: str
    value: Any
    layer: str = Field(description="default, base, tenant, agent, scenario, step or override.")
    source: str = Field(description="The file (and path in it) that set the value.")


class ExplainView(BaseModel):
    tenant: str
    version: str
    agent: str
    rows: list[ExplainRowView]


class OverridesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overrides: dict[str, Any] = Field(
        description="Dotted key → value, each key one the agent marks `overridable` "
        '(`{"settings.deadline_ms": 8000}`); `{}` clears them.'
    )


class OverridesView(BaseModel):
    session_id: str
    overrides: dict[str, Any]
    state_version: int


def summary(v: ConfigVersion) -> dict[str, Any]:
    return {
        "number": v.number,
        "label": v.label,
        "status": v.status.value,
        "rolled_back": v.rolled_back,
        "content_hash": v.content_hash,
        "author": v.author,
        "message": v.message,
        "git_commit": v.git_commit,
        "apply": v.apply.value,
        "created_at_ms": v.created_at_ms,
        "updated_at_ms": v.updated_at_ms,
        "gates": dict(v.gates),
    }


def detail(v: ConfigVersion) -> VersionDetail:
    return VersionDetail(
        **summary(v),
        source=dict(v.source),
        resolved=dict(v.resolved),
        provenance=dict(v.provenance),
    )


def pointer_fields(p: ConfigPointer | None) -> dict[str, Any]:
    if p is None:
        return {
            "live": None,
            "previous_live": None,
            "canary": None,
            "canary_share": 0,
            "canary_started_at_ms": None,
            "canary_step_at_ms": None,
            "updated_at_ms": None,
        }
    return {
        "live": p.live,
        "previous_live": p.previous_live,
        "canary": p.canary,
        "canary_share": p.canary_share,
        "canary_started_at_ms": p.canary_started_at_ms,
        "canary_step_at_ms": p.canary_step_at_ms,
        "updated_at_ms": p.updated_at_ms,
    }


def arm_view(s: ArmStats) -> ArmView:
    return ArmView(
        turns=s.turns,
        failed=s.failed,
        fallback=s.fallback,
        handoff=s.handoff,
        failure_rate=s.failure_rate,
        fallback_rate=s.fallback_rate,
        handoff_rate=s.handoff_rate,
        latency_p95_ms=s.latency_p95_ms,
    )


def canary_view(status: CanaryStatus) -> CanaryStatusView:
    arms = {}
    if status.live is not None:
        arms["live"] = arm_view(status.live)
    if status.canary is not None:
        arms["canary"] = arm_view(status.canary)
    last = None
    if status.last_rollback is not None:
        data = status.last_rollback.data
        label = data.get("version")
        last = RollbackView(
            version=label if isinstance(label, str) else None,
            reason=str(data.get("reason", "")),
            actor=str(data.get("actor", "")),
            automatic=is_automatic(status.last_rollback),
            at_ms=status.last_rollback.at_ms,
            stats=dict(data.get("stats") or {}),
        )
    return CanaryStatusView(
        **pointer_fields(status.pointer),
        since_ms=status.since_ms,
        arms=arms,
        decisions=[event_view(e) for e in status.decisions],
        last_rollback=last,
    )
