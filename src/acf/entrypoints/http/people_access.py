"""What the operator routes share (``routes_handoff``, ``routes_blocks``): the desk built
for a request, the operator a key is, the session of the key's tenant (404 otherwise), the
wake-up after a write, and the desk's refusals as HTTP errors.

Every write is attributed to the key that made it (``Operator(key_id, name)``): the op's
audit event carries it, with the request's trace id.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from acf.bootstrap import Service
from acf.domain.errors import Conflict
from acf.domain.ids import SessionId, TenantId
from acf.entrypoints.http.context import ApiState
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody
from acf.ports.api_keys import ApiKeyRecord
from acf.ports.handoffs import Operator
from acf.ports.session_store import SessionRecord
from acf.service.operator_desk import NoSuchSession, OperatorDesk

SESSION_BUSY_RETRY_S = 1
"""``Retry-After`` of a 409 ``session_busy``: a turn's commit holds the session briefly."""


def doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: doc("No valid API key"),
    403: doc("The key's scope is not `operator` or `admin`"),
    422: doc("Invalid body or parameter (each problem names its field)"),
}
SESSION_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    404: doc("No such session for this tenant"),
}

_CONFLICTS = {
    "claimed": "another operator holds a live claim on this session; wait until they "
    "release it or their claim expires",
    "not_claimed": "you do not hold a live claim on this session: claim it first "
    "(POST /v1/sessions/{id}/claim)",
    "not_human": "the session is not handed off to a person (no open handoff): hand it "
    "off first (POST /v1/sessions/{id}/handoff)",
    "session_busy": "the session is busy (a turn is being committed); retry in a moment",
    "closed": "the session is closed",
    "blocked": "the customer is on the block list; lift the block first",
}
"""The desk's ``Conflict`` reasons, as the API's 409 codes and messages."""


def operator_of(key: ApiKeyRecord) -> Operator:
    return Operator(key_id=key.key_id, name=key.name)


def trace_of(request: Request) -> str:
    """The request's trace id (``TraceMiddleware``): the audit events carry it."""
    trace_id: str = request.state.trace_id
    return trace_id


async def _nowhere(tenant: TenantId, session_id: SessionId) -> None:
    """No wake-up channel in this service: the store stays the truth, and recovery finds
    the session (a lost wake-up costs latency, never correctness)."""


def desk_of(service: Service) -> OperatorDesk:
    wake = service.wakeups.notify if service.wakeups is not None else _nowhere
    return OperatorDesk(service.store, service.clock, wake, service.people)


async def wake(service: Service, tenant: TenantId, session_ids: list[SessionId]) -> None:
    notify = service.wakeups.notify if service.wakeups is not None else _nowhere
    for session_id in session_ids:
        await notify(tenant, session_id)


def may_be_id(value: str) -> bool:
    """Whether a path's ``value`` can name a stored row: no text PostgreSQL stores holds a
    NUL, and it refuses to look one up (a 500), so an id with one is an unknown id."""
    return "\x00" not in value


async def session_of(state: ApiState, tenant: TenantId, session_id: SessionId) -> SessionRecord:
    session = None
    if may_be_id(session_id):
        session = await state.service.store.sessions.get(tenant, session_id)
    if session is None:
        raise not_found(f"no session {session_id!r}")
    return session


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


@contextmanager
def desk_refusals(session_id: SessionId) -> Iterator[None]:
    """The desk's refusals of a session's request as HTTP errors: ``Conflict`` → 409
    (``refused``); a session gone meanwhile → 404."""
    try:
        yield
    except Conflict as exc:
        raise refused(exc, f"session {session_id}") from None
    except NoSuchSession:
        raise not_found(f"no session {session_id!r}") from None


def refused(exc: Conflict, subject: str) -> ApiError:
    """A desk's or an op's ``Conflict`` as the answer: 409 with its reason as the code (404
    for ``not_found``); ``subject`` names what was refused in the message."""
    reason = exc.reason
    if reason == "not_found":
        return not_found(f"no {subject}")
    message = _CONFLICTS.get(reason)
    if message is None:
        return ApiError(409, "conflict", f"{subject}: refused ({reason})")
    headers = {"Retry-After": str(SESSION_BUSY_RETRY_S)} if reason == "session_busy" else None
    return ApiError(409, reason, f"{subject}: {message}", headers=headers)
