"""People in the loop: the inbox and what an operator does with a handed-off session.

Every route needs a key of scope ``operator`` or ``admin`` (an ``api`` key gets 403) and
sees only its tenant: another tenant's session answers 404 exactly as an unknown one does.
The work is ``OperatorDesk``'s; its refusals are 409s whose code is the reason
(``people_access.refused``). Each write's audit event names the key (``by``: key id and
name) and carries the request's trace id; the statuses, the timeline and the ledger of a
session come from the customer API's read routes, which an operator key may use.
"""

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from acf.domain.errors import Conflict
from acf.domain.ids import SessionId, new_id
from acf.entrypoints.http.context import ApiState, OperatorKey, State
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.people_access import (
    COMMON_ERRORS,
    SESSION_ERRORS,
    desk_of,
    desk_refusals,
    doc,
    operator_of,
    session_of,
    trace_of,
)
from acf.entrypoints.http.people_views import (
    ClaimBody,
    HandBackBody,
    HandoffBody,
    HandoffView,
    InboxView,
    NoteBody,
    NoteList,
    NoteView,
    OperatorMessageBody,
    OperatorReplyView,
    SessionModeView,
    handoff_view,
    inbox_entry_view,
    mode_view,
    note_view,
)
from acf.ports.handoffs import InboxState
from acf.ports.request_log import ReserveRequest, SaveResponse, StoredResponse

router = APIRouter(prefix="/v1", tags=["people in the loop"])


def _with(*codes: str) -> dict[int | str, dict[str, Any]]:
    return {**SESSION_ERRORS, 409: doc(f"Refused: the code is one of {', '.join(codes)}")}


@router.get("/inbox", response_model=InboxView, responses=COMMON_ERRORS)
async def inbox(
    key: OperatorKey,
    state: State,
    inbox_state: Annotated[
        InboxState,
        Query(
            alias="state",
            description="waiting (nobody holds a claim), claimed, open (both: the "
            "default) or resolved (handed back, newest first).",
        ),
    ] = InboxState.OPEN,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> InboxView:
    service = state.service
    entries = await desk_of(service).inbox(key.tenant, inbox_state, limit)
    now_ms = service.clock.now_ms()
    return InboxView(
        entries=[inbox_entry_view(e, now_ms) for e in entries],
        sla_ms=service.people(key.tenant).handoff.sla_ms,
    )


@router.post(
    "/sessions/{session_id}/handoff",
    response_model=HandoffView,
    responses=_with("closed", "blocked"),
    summary="Hand the session to a person (the agent stops answering it)",
)
async def handoff(
    session_id: SessionId, body: HandoffBody, request: Request, key: OperatorKey, state: State
) -> HandoffView:
    await session_of(state, key.tenant, session_id)
    with desk_refusals(session_id):
        opened = await desk_of(state.service).handoff(
            key.tenant, session_id, body.reason, operator_of(key), trace_id=trace_of(request)
        )
    return handoff_view(opened, state.service.clock.now_ms())


@router.post(
    "/sessions/{session_id}/claim",
    response_model=HandoffView,
    responses=_with("claimed", "not_human"),
    summary="Take the handed-off session (one operator at a time), or renew the claim",
)
async def claim(
    session_id: SessionId,
    request: Request,
    key: OperatorKey,
    state: State,
    body: ClaimBody | None = None,
) -> HandoffView:
    await session_of(state, key.tenant, session_id)
    ttl_s = None if body is None else body.ttl_s
    with desk_refusals(session_id):
        held = await desk_of(state.service).claim(
            key.tenant,
            session_id,
            operator_of(key),
            None if ttl_s is None else ttl_s * 1000,
            trace_id=trace_of(request),
        )
    return handoff_view(held, state.service.clock.now_ms())


def _request_hash(session_id: SessionId, key_id: str, body: OperatorMessageBody) -> str:
    canonical = json.dumps(
        {"session_id": session_id, "key_id": key_id, "body": body.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _reused() -> ApiError:
    return ApiError(
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request; use a new key",
    )


def _in_flight() -> ApiError:
    return ApiError(
        409,
        "in_progress",
        "a request with this Idempotency-Key committed its reply (it is sent once) but its "
        "answer is not stored: still in flight (retry in a moment), or its process stopped "
        "(the reply is in the session's turns)",
        headers={"Retry-After": "1"},
    )


def _replay(stored: StoredResponse) -> JSONResponse:
    assert stored.body is not None and stored.status_code is not None
    return JSONResponse(dict(stored.body), status_code=stored.status_code)


_RESERVATION = "idempotency key "
"""How the request log's refusal of a reservation held for another request begins."""


_HASH_CHARS = 48
"""A reservation is ``<hash prefix>:<attempt mark>`` within the request log's 64 characters:
192 bits of the request's hash, 60 of the attempt's mark."""


def _mark(request_hash: str) -> str:
    return f"{request_hash[:_HASH_CHARS]}:{new_id()[:15]}"


def _hash_of(stored: str) -> str:
    """The request's hash prefix in a reservation's (``_mark``)."""
    return stored.split(":", 1)[0]


def _answer_of(earlier: StoredResponse, request_hash: str) -> JSONResponse:
    """The answer to a request whose ``Idempotency-Key`` a reply already committed with: its
    stored answer; 422 when that was another request; 409 while its answer is not stored."""
    if _hash_of(earlier.request_hash) != request_hash[:_HASH_CHARS]:
        raise _reused()
    if earlier.body is None:
        raise _in_flight()
    return _replay(earlier)


@router.post(
    "/sessions/{session_id}/operator-messages",
    status_code=202,
    response_model=OperatorReplyView,
    responses={
        **_with("not_claimed", "not_human", "session_busy", "closed", "in_progress"),
        422: doc(
            "Invalid body (each problem names its field; an empty text), or an "
            "Idempotency-Key used with another request (`idempotency_key_reused`)"
        ),
    },
    summary="Reply to the customer as the operator holding the claim",
)
async def operator_message(
    session_id: SessionId,
    body: OperatorMessageBody,
    request: Request,
    key: OperatorKey,
    state: State,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=256,
            description="The same key and request: the first answer again, and the reply "
            "is sent once. The same key with another request: 422.",
        ),
    ] = None,
) -> Any:
    service, tenant = state.service, key.tenant
    request_hash = _request_hash(session_id, key.key_id, body)
    if idempotency_key is not None:
        earlier = await service.store.requests.find(tenant, idempotency_key)
        if earlier is not None:  # reserved only by a reply committed with it (one unit)
            return _answer_of(earlier, request_hash)
    await session_of(state, tenant, session_id)
    guards = []
    if idempotency_key is not None:
        # Reserved in the reply's own unit with this attempt's own mark: of two attempts
        # with the same key (a retry racing the first), the second's unit is refused, so
        # the customer gets one reply; the mark is cut off when the hashes are compared.
        guards.append(ReserveRequest(idempotency_key, _mark(request_hash), service.clock.now_ms()))
    with desk_refusals(session_id):
        try:
            sent = await desk_of(service).reply(
                tenant,
                session_id,
                operator_of(key),
                body.text,
                body.buttons,
                body.answers_through_seq,
                trace_id=trace_of(request),
                guards=guards,
            )
        except Conflict as exc:
            if idempotency_key is None or not exc.reason.startswith(_RESERVATION):
                raise
            # Another attempt with the key committed first: its answer, never a 2nd reply.
            earlier = await service.store.requests.find(tenant, idempotency_key)
            if earlier is None:
                raise _reused() from None
            return _answer_of(earlier, request_hash)
    result = OperatorReplyView(
        turn_id=sent.turn_id,
        outbox_ids=list(sent.outbox_ids),
        answered_through_seq=sent.answered_through_seq,
    )
    if idempotency_key is None:
        return result
    op = SaveResponse(idempotency_key, 202, result.model_dump(mode="json"))
    return _replay((await service.store.uow.commit(tenant, [op])).get(op))


@router.post(
    "/sessions/{session_id}/notes",
    status_code=201,
    response_model=NoteView,
    responses=SESSION_ERRORS,
    summary="Add an internal note (never sent to the customer)",
)
async def add_note(
    session_id: SessionId, body: NoteBody, request: Request, key: OperatorKey, state: State
) -> NoteView:
    await session_of(state, key.tenant, session_id)
    with desk_refusals(session_id):
        note = await desk_of(state.service).add_note(
            key.tenant, session_id, operator_of(key), body.text, trace_id=trace_of(request)
        )
    return note_view(note)


@router.get("/sessions/{session_id}/notes", response_model=NoteList, responses=SESSION_ERRORS)
async def notes(session_id: SessionId, key: OperatorKey, state: State) -> NoteList:
    await session_of(state, key.tenant, session_id)
    found = await desk_of(state.service).notes(key.tenant, session_id)
    return NoteList(notes=[note_view(n) for n in found])


async def _mode_after(state: ApiState, tenant: str, session_id: SessionId) -> SessionModeView:
    service = state.service
    session = await session_of(state, tenant, session_id)
    current = await service.store.handoffs.current(tenant, session_id)
    return mode_view(session, current, service.clock.now_ms())


@router.post(
    "/sessions/{session_id}/release",
    response_model=SessionModeView,
    responses=_with("not_claimed", "not_human"),
    summary="Give up the claim (the session stays with people, back in the waiting list)",
)
async def release(
    session_id: SessionId,
    request: Request,
    key: OperatorKey,
    state: State,
    body: HandBackBody | None = None,
) -> SessionModeView:
    await session_of(state, key.tenant, session_id)
    note = None if body is None else body.note
    with desk_refusals(session_id):
        await desk_of(state.service).release(
            key.tenant, session_id, operator_of(key), note, trace_id=trace_of(request)
        )
    return await _mode_after(state, key.tenant, session_id)


@router.post(
    "/sessions/{session_id}/resume",
    response_model=SessionModeView,
    responses=_with("not_human", "claimed", "closed"),
    summary="Hand the session back to the agent (with a note it sees)",
)
async def resume(
    session_id: SessionId,
    request: Request,
    key: OperatorKey,
    state: State,
    body: HandBackBody | None = None,
) -> SessionModeView:
    await session_of(state, key.tenant, session_id)
    note = None if body is None else body.note
    with desk_refusals(session_id):
        await desk_of(state.service).resume(
            key.tenant, session_id, operator_of(key), note, trace_id=trace_of(request)
        )
    return await _mode_after(state, key.tenant, session_id)
