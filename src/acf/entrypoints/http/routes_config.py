"""``/v1/config``: a tenant's configuration versions (DESIGN §17): validate, push, history,
diff, promote, canary, rollback, canary status and explain; and a session's runtime
overrides (``PUT /v1/sessions/{id}/config-overrides``).

The ``/v1/config`` routes need an API key with scope ``admin`` (403 otherwise) and act on
the key's tenant only: another tenant's version answers 404, as an unknown one does, and a
configuration naming another tenant is refused with 403. A pointer change (promote, canary,
rollback) is audited by its event and reaches every acf process within seconds.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from acf.domain.errors import InvalidValue, VersionConflict
from acf.domain.ids import SessionId
from acf.entrypoints.http.config_files import FileConfigs
from acf.entrypoints.http.config_uploads import config_problems
from acf.entrypoints.http.config_views import (
    CanaryBody,
    CanaryStatusView,
    DiffRowView,
    DiffView,
    ExplainRowView,
    ExplainView,
    OverridesBody,
    OverridesView,
    PointerView,
    PromoteBody,
    PushBody,
    PushedView,
    RollbackBody,
    UploadBody,
    ValidationView,
    VersionDetail,
    VersionList,
    VersionSummary,
    canary_view,
    detail,
    pointer_fields,
    summary,
)
from acf.entrypoints.http.context import AdminKey, ApiState, State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody, Problem
from acf.ports.api_keys import ApiKeyRecord
from acf.service.canary_status import canary_status
from acf.service.config_lifecycle import (
    ConfigLifecycle,
    ForeignTenant,
    NoSuchVersion,
    Refused,
    Upload,
)
from acf.service.config_overrides import set_overrides, stored_overrides

router = APIRouter(prefix="/v1", tags=["configuration"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    403: {"model": ErrorBody, "description": "The key's scope is not admin"},
    404: {"model": ErrorBody, "description": "No such version for this tenant"},
    422: {"model": ErrorBody, "description": "Invalid body or query"},
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    409: {"model": ErrorBody, "description": "Refused by the version's or pointer's state"},
}
_PUSH_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    403: {"model": ErrorBody, "description": "Not an admin key, or a file naming another tenant"},
    422: {"model": ErrorBody, "description": "Invalid configuration: each problem names its field"},
}
Number = Annotated[int, Query(ge=1, le=2**31, description="A version number")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31, description="The version's number")]


def lifecycle_of(state: ApiState) -> ConfigLifecycle:
    if state.lifecycle is None:
        service = state.service
        # what uploads may use (python factories, secrets) is what the served file uses
        files = FileConfigs(service.loaded, service.backends.builtin)
        changes = service.config_changes
        state.lifecycle = ConfigLifecycle(service.store, service.clock, changes, files)
    return state.lifecycle


def actor_of(key: ApiKeyRecord) -> str:
    """How an API key appears in audit events (never the key itself)."""
    return f"key {key.key_id} ({key.name})"


@contextmanager
def refusals() -> Iterator[None]:
    """The lifecycle's refusals as HTTP errors."""
    try:
        yield
    except InvalidValue as exc:  # ConfigError: the message names the file and each field
        problems = [{"field": p.path, "message": p.message} for p in config_problems(str(exc))]
        raise ApiError(422, "invalid_config", str(exc), problems) from None
    except NoSuchVersion as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ForeignTenant as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    except Refused as exc:
        raise ApiError(409, "refused", str(exc)) from None


def _upload(body: UploadBody) -> Upload:
    return Upload(body.yaml, dict(body.files), body.name)


@router.post("/config/validate", response_model=ValidationView, responses=_PUSH_ERRORS)
async def validate(body: UploadBody, key: AdminKey, state: State) -> ValidationView:
    """Check a configuration for the key's tenant without storing it: ``valid`` and each
    problem (its field, what was expected)."""
    lifecycle = lifecycle_of(state)
    try:
        with refusals():
            source = await lifecycle.validate(key.tenant, _upload(body))
    except ApiError as exc:
        if exc.status != 422:
            raise
        problems = [Problem(**p) for p in exc.problems]
        return ValidationView(valid=False, problems=problems, content_hash=None, agents=[])
    agents = sorted(source.resolved.get("agents") or {})
    return ValidationView(valid=True, problems=[], content_hash=source.content_hash, agents=agents)


@router.get("/config/versions", response_model=VersionList, responses=_ERRORS)
async def list_versions(
    key: AdminKey, state: State, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> VersionList:
    """The tenant's versions, newest first, with its pointer (live, canary, share)."""
    lifecycle = lifecycle_of(state)
    versions = await lifecycle.history(key.tenant, limit)
    pointer = await lifecycle.pointer(key.tenant)
    return VersionList(
        **pointer_fields(pointer), items=[VersionSummary(**summary(v)) for v in versions]
    )


@router.post(
    "/config/versions",
    response_model=PushedView,
    status_code=201,
    responses={**_PUSH_ERRORS, 200: {"model": PushedView, "description": "Pushed before"}},
    summary="Push a configuration: a new draft version (or the one with the same content)",
)
async def push_version(
    body: PushBody, key: AdminKey, state: State, response: Response
) -> PushedView:
    lifecycle = lifecycle_of(state)
    with refusals():
        pushed = await lifecycle.push(
            key.tenant,
            _upload(body),
            author=body.author or key.name,
            message=body.message,
            git_commit=body.git_commit,
            actor=actor_of(key),
        )
    if not pushed.created:
        response.status_code = 200
    return PushedView(**summary(pushed.version), created=pushed.created)


@router.get("/config/versions/{number}", response_model=VersionDetail, responses=_ERRORS)
async def get_version(number: VersionNumber, key: AdminKey, state: State) -> VersionDetail:
    """One version: its source layers, resolved configuration and provenance."""
    with refusals():
        return detail(await lifecycle_of(state).get(key.tenant, number))


@router.get("/config/diff", response_model=DiffView, responses=_ERRORS)
async def diff(a: Number, b: Number, key: AdminKey, state: State) -> DiffView:
    """What changes from version ``a`` to version ``b``, per dotted key (resolved)."""
    with refusals():
        rows = await lifecycle_of(state).diff(key.tenant, a, b)
    return DiffView(
        a=f"v{a}",
        b=f"v{b}",
        rows=[
            DiffRowView(key=r.key, change=r.change, before=r.before, after=r.after) for r in rows
        ],
    )


@router.post(
    "/config/versions/{number}/promote",
    response_model=PointerView,
    responses=_WRITE_ERRORS,
    summary="Make a version live for every new session (409 without a passed scenarios gate)",
)
async def promote(
    number: VersionNumber, key: AdminKey, state: State, body: PromoteBody | None = None
) -> PointerView:
    force = body.force if body is not None else False
    with refusals():
        pointer = await lifecycle_of(state).promote(key.tenant, number, actor_of(key), force)
    return PointerView(**pointer_fields(pointer))


@router.post(
    "/config/versions/{number}/canary",
    response_model=PointerView,
    responses=_WRITE_ERRORS,
    summary="Give a version to a share of new sessions (409 without a passed scenarios gate "
    "unless forced), or move the running canary's share",
)
async def canary(
    number: VersionNumber, body: CanaryBody, key: AdminKey, state: State
) -> PointerView:
    with refusals():
        pointer = await lifecycle_of(state).canary(
            key.tenant, number, body.share, actor_of(key), body.force
        )
    return PointerView(**pointer_fields(pointer))


@router.post(
    "/config/rollback",
    response_model=PointerView,
    responses=_WRITE_ERRORS,
    summary="Back to the previous live version (or retire the running canary only)",
)
async def rollback(key: AdminKey, state: State, body: RollbackBody | None = None) -> PointerView:
    body = body or RollbackBody()
    reason = body.reason or "rolled back through the API"
    with refusals():
        pointer = await lifecycle_of(state).rollback(
            key.tenant, actor_of(key), reason, canary_only=body.canary
        )
    return PointerView(**pointer_fields(pointer))


@router.get("/config/canary", response_model=CanaryStatusView, responses=_ERRORS)
async def canary_state(key: AdminKey, state: State) -> CanaryStatusView:
    """The canary's share, both arms' stats since the share began, the last decisions."""
    service = state.service
    return canary_view(await canary_status(service.store, service.clock, key.tenant))


@router.get("/config/explain", response_model=ExplainView, responses=_ERRORS)
async def explain(
    key: AdminKey,
    state: State,
    agent: Annotated[str, Query(min_length=1, max_length=200)],
    config_key: Annotated[
        str | None, Query(alias="key", max_length=500, description="A dotted key (prefix)")
    ] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31, description="Default: live")] = None,
) -> ExplainView:
    """Each resolved value of ``agent`` with the layer and file that set it."""
    with refusals():
        explained = await lifecycle_of(state).explain(key.tenant, agent, config_key, version)
    rows = [
        ExplainRowView(key=r.key, value=r.value, layer=r.layer, source=r.source)
        for r in explained.rows
    ]
    return ExplainView(tenant=key.tenant, version=explained.label, agent=agent, rows=rows)


@router.put(
    "/sessions/{session_id}/config-overrides",
    response_model=OverridesView,
    responses={
        **_ERRORS,
        404: {"model": ErrorBody, "description": "No such session for this tenant"},
        409: {"model": ErrorBody, "description": "The session's state kept changing"},
        422: {"model": ErrorBody, "description": "A key the agent does not let sessions set"},
    },
    summary="Set a session's runtime overrides (keys its agent marks overridable)",
)
async def put_overrides(
    session_id: SessionId, body: OverridesBody, tenant: Tenant, state: State
) -> OverridesView:
    service = state.service
    session = await service.store.sessions.get(tenant, session_id)
    if session is None:
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    try:
        with refusals():
            written = await set_overrides(
                lifecycle_of(state), session, body.overrides, service.clock.now_ms()
            )
    except VersionConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except ApiError as exc:
        if exc.status == 422:
            exc.code = "invalid_override"
        raise
    return OverridesView(
        session_id=session_id,
        overrides=dict(stored_overrides(written.state) or {}),
        state_version=written.state_version,
    )
