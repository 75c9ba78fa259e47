"""Ingress: validation, durable append, dedupe, wake-up — against a real SQLite file."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from acf.adapters.channels.web import parse_web_message
from acf.bootstrap import Embedded, open_embedded
from acf.domain.errors import InvalidMessage, MessageTooLarge, UnknownAgent, UnknownTenant
from acf.domain.events import EventKind
from acf.domain.messages import MAX_TEXT_LENGTH
from acf.ports.event_store import EventQuery
from acf.testing import VirtualClock


@pytest.fixture
async def embedded(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Embedded]:
    system = await open_embedded(tmp_path, {"demo": ["support"], "other": ["sales"]}, clock)
    try:
        yield system
    finally:
        await system.close()


def payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent": "support",
        "customer": "web-visitor-1",
        "client_message_id": "c-1",
        "text": "hi there",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def count_messages(system: Embedded, tenant: str = "demo") -> int:
    sessions = await system.store.sessions.list_sessions(tenant)
    return sum(s.last_seq for s in sessions)


async def test_accept_stores_sequences_and_wakes(embedded: Embedded) -> None:
    sub = embedded.wakeups.subscribe()
    first = await embedded.ingress.accept(parse_web_message("demo", payload()), "trace-abc")
    second = await embedded.ingress.accept(
        parse_web_message("demo", payload(client_message_id="c-2", text="order 12"))
    )
    assert (first.seq, second.seq, first.duplicate) == (1, 2, False)
    assert first.trace_id == "trace-abc" and len(second.trace_id) == 32
    wake = await asyncio.wait_for(sub.__anext__(), 1)
    assert (wake.tenant, wake.session_id) == ("demo", first.session_id)
    stored = await embedded.store.messages.read_range("demo", first.session_id, 0, 10)
    assert [m.text for m in stored] == ["hi there", "order 12"]
    events = await embedded.store.events.query("demo", EventQuery())
    assert events[0].correlation.trace_id == "trace-abc"
    sub.close()


async def test_redelivery_returns_original_and_wakes_again(embedded: Embedded) -> None:
    """A re-delivery wakes the session too: the first caller may have been cancelled
    after its commit, before its wake-up."""
    first = await embedded.ingress.accept(parse_web_message("demo", payload()))
    sub = embedded.wakeups.subscribe()
    again = await embedded.ingress.accept(parse_web_message("demo", payload()))
    assert again.duplicate and (again.message_id, again.seq) == (first.message_id, first.seq)
    wake = await asyncio.wait_for(sub.__anext__(), 1)
    assert wake.session_id == first.session_id
    kinds = [e.kind for e in await embedded.store.events.query("demo", EventQuery())]
    assert kinds == [EventKind.MESSAGE_RECEIVED, EventKind.MESSAGE_DUPLICATE]
    assert await count_messages(embedded) == 1


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (payload(agent=None), InvalidMessage, "agent: Field required"),
        (payload(client_message_id=""), InvalidMessage, "client_message_id"),
        (payload(text=None), InvalidMessage, "needs text, a button reply or media"),
        (payload(text=12), InvalidMessage, "text: Input should be a valid string"),
        (payload(surprise=True), InvalidMessage, "surprise: Extra inputs"),
        (payload(button={"title": "x"}), InvalidMessage, "button.id: Field required"),
        (payload(text="x" * (MAX_TEXT_LENGTH + 1)), MessageTooLarge, "the limit is 16384"),
    ],
)
async def test_bad_input_is_refused_with_the_field_named(
    embedded: Embedded, body: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        await embedded.ingress.accept(parse_web_message("demo", body))
    assert await count_messages(embedded) == 0


async def test_unknown_tenant_or_agent_is_refused(embedded: Embedded) -> None:
    with pytest.raises(UnknownTenant, match="'nobody'"):
        await embedded.ingress.accept(parse_web_message("nobody", payload()))
    with pytest.raises(UnknownAgent, match="tenant 'other' has no agent 'support'"):
        await embedded.ingress.accept(parse_web_message("other", payload()))
    assert await count_messages(embedded) == 0
    assert await count_messages(embedded, "other") == 0


async def test_an_error_loses_nothing_already_accepted(embedded: Embedded) -> None:
    ok = await embedded.ingress.accept(parse_web_message("demo", payload()))
    with pytest.raises(InvalidMessage):
        await embedded.ingress.accept(parse_web_message("demo", payload(text=None)))
    stored = await embedded.store.messages.get("demo", ok.message_id)
    assert stored is not None and stored.seq == 1
