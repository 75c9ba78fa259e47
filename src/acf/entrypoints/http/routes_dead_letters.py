"""Dead letters: turns whose agent failed for good, for a person to inspect and replay
(DESIGN §16, seed 004 Story 7).

Scoped by the caller's tenant: another tenant's letter answers 404, as an unknown one does.
A replay is accepted once (202); the REPLAY turn then runs in the session's turn order, and
``dead_letter.replayed`` with the letter's ``replay_turn_id`` say when it ran.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from acf.domain.ids import SessionId
from acf.entrypoints.http.context import State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import ErrorBody
from acf.ports.dead_letters import AlreadyReplayed, DeadLetter, NoSuchDeadLetter
from acf.service.dead_letters import request_replay

router = APIRouter(prefix="/v1", tags=["dead letters"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key"},
    404: {"model": ErrorBody, "description": "No such dead letter for this tenant"},
    422: {"model": ErrorBody, "description": "Invalid query parameter"},
}
_REPLAY_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    409: {"model": ErrorBody, "description": "Its replay was requested before"},
}


class DeadLetterView(BaseModel):
    dead_letter_id: str
    session_id: str
    agent: str
    turn_id: str = Field(description="The turn whose agent failed.")
    group_id: str
    trace_id: str
    pipeline: str
    error: str = Field(description="What failed (no secret, no payload).")
    attempts: int
    created_at_ms: int
    request: dict[str, Any] = Field(description="What the agent was asked (redacted).")
    replay_requested_at_ms: int | None
    replay_turn_id: str | None = Field(description="The REPLAY turn that ran it, once it ended.")
    replayed_at_ms: int | None


class DeadLetterList(BaseModel):
    items: list[DeadLetterView]


class ReplayAccepted(BaseModel):
    dead_letter_id: str
    session_id: str
    replay_requested_at_ms: int
    message: str = Field(description="What happens next.")


def dead_letter_view(letter: DeadLetter) -> DeadLetterView:
    return DeadLetterView(
        dead_letter_id=letter.dead_letter_id,
        session_id=letter.session_id,
        agent=letter.agent,
        turn_id=letter.turn_id,
        group_id=letter.group_id,
        trace_id=letter.trace_id,
        pipeline=letter.pipeline,
        error=letter.error,
        attempts=letter.attempts,
        created_at_ms=letter.created_at_ms,
        request=dict(letter.request),
        replay_requested_at_ms=letter.replay_requested_at_ms,
        replay_turn_id=letter.replay_turn_id,
        replayed_at_ms=letter.replayed_at_ms,
    )


def _unknown(dead_letter_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no dead letter {dead_letter_id!r}")


@router.get("/dead-letters", response_model=DeadLetterList, responses=_ERRORS)
async def list_dead_letters(
    tenant: Tenant,
    state: State,
    session_id: Annotated[SessionId | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterList:
    """The tenant's dead letters, newest first (one session's with ``session_id``)."""
    store = state.service.store
    letters = await store.dead_letters.list(tenant, limit=limit, session_id=session_id)
    return DeadLetterList(items=[dead_letter_view(d) for d in letters])


@router.get("/dead-letters/{dead_letter_id}", response_model=DeadLetterView, responses=_ERRORS)
async def get_dead_letter(dead_letter_id: str, tenant: Tenant, state: State) -> DeadLetterView:
    letter = await state.service.store.dead_letters.get(tenant, dead_letter_id)
    if letter is None:
        raise _unknown(dead_letter_id)
    return dead_letter_view(letter)


@router.post(
    "/dead-letters/{dead_letter_id}/replay",
    status_code=202,
    response_model=ReplayAccepted,
    responses=_REPLAY_ERRORS,
    summary="Run a dead letter again, once, as a REPLAY turn of its session",
)
async def replay_dead_letter(dead_letter_id: str, tenant: Tenant, state: State) -> ReplayAccepted:
    service = state.service
    try:
        letter = await request_replay(
            service.store, service.runtime.notify, service.clock, tenant, dead_letter_id
        )
    except NoSuchDeadLetter:
        raise _unknown(dead_letter_id) from None
    except AlreadyReplayed:
        raise ApiError(
            409, "already_replayed", f"dead letter {dead_letter_id!r} was already replayed"
        ) from None
    assert letter.replay_requested_at_ms is not None
    return ReplayAccepted(
        dead_letter_id=letter.dead_letter_id,
        session_id=letter.session_id,
        replay_requested_at_ms=letter.replay_requested_at_ms,
        message="the replay runs as a turn of its session once the session has nothing "
        "else to do; dead_letter.replayed tells when it ran",
    )
