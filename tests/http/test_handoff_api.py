"""The handoff routes over real HTTP: the inbox, hand off, claim, operator replies (with
Idempotency-Key), notes, release and resume; each named refusal; two operators racing for
one claim; every write audited with the key that made it and the request's trace id."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acf.ports.lease import CheckFence
from acf.ports.session_store import CloseSession
from acf.service.handoff_units import MAX_TEXT
from tests.http.conftest import settled
from tests.http.people import (
    People,
    answered_session,
    events_of,
    handed_off,
    say,
    serve_people,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
async def people(tmp_path: Path) -> AsyncIterator[People]:
    async for served in serve_people(tmp_path):
        yield served


async def test_a_session_goes_to_people_and_back(people: People) -> None:
    session_id = await answered_session(people)
    async with people.operator("ana") as ana, people.operator("bob") as bob:
        r = await ana.post(
            f"/v1/sessions/{session_id}/handoff",
            json={"reason": "wants a person"},
            headers={"traceparent": TRACEPARENT},
        )
        assert r.status_code == 200, r.text
        opened = r.json()
        assert opened["session_id"] == session_id and opened["reason"] == "wants a person"
        assert opened["source"] == "operator" and opened["claimed_by"] is None
        assert opened["opened_by"] == people.by("ana")["key_id"]
        again = await ana.post(f"/v1/sessions/{session_id}/handoff", json={"reason": "again"})
        assert again.status_code == 200 and again.json()["handoff_id"] == opened["handoff_id"]

        inbox = (await ana.get("/v1/inbox")).json()
        assert inbox["sla_ms"] == 300_000
        [entry] = inbox["entries"]
        assert entry["handoff_id"] == opened["handoff_id"] and entry["mode"] == "human"
        assert (entry["customer"], entry["channel"], entry["agent"]) == ("carol", "web", "support")
        assert entry["claimed_by"] is None and entry["waiting_ms"] >= 0
        assert [
            e["session_id"] for e in (await ana.get("/v1/inbox?state=waiting")).json()["entries"]
        ] == [session_id]
        assert (await ana.get("/v1/inbox?state=claimed")).json()["entries"] == []

        async with people.customer_api() as c:
            held = await say(c, "carol-2", "is anybody there?")
            assert held["seq"] == 2

        r = await ana.post(f"/v1/sessions/{session_id}/claim", json={"ttl_s": 600})
        assert r.status_code == 200, r.text
        assert r.json()["claimed_by"] == people.by("ana")
        claimed = (await ana.get("/v1/inbox?state=claimed")).json()["entries"]
        assert [e["claimed_by"] for e in claimed] == [people.by("ana")]
        assert claimed[0]["unanswered"] == 1

        r = await ana.post(
            f"/v1/sessions/{session_id}/operator-messages",
            json={"text": "Hi Carol, Ana here.", "buttons": ["Thanks"]},
        )
        assert r.status_code == 202, r.text
        sent = r.json()
        assert sent["answered_through_seq"] == 2 and len(sent["outbox_ids"]) == 1

        r = await ana.post(f"/v1/sessions/{session_id}/notes", json={"text": "VIP customer"})
        assert r.status_code == 201, r.text
        note = r.json()
        assert note["author"] == people.by("ana") and note["text"] == "VIP customer"
        assert note["handoff_id"] == opened["handoff_id"]
        notes = (await bob.get(f"/v1/sessions/{session_id}/notes")).json()["notes"]
        assert [n["note_id"] for n in notes] == [note["note_id"]]

        r = await ana.post(f"/v1/sessions/{session_id}/release", json={"note": "over to you"})
        assert r.status_code == 200, r.text
        released = r.json()
        assert released["mode"] == "human" and released["handoff"]["claimed_by"] is None

        r = await bob.post(f"/v1/sessions/{session_id}/resume", json={"note": "refund done"})
        assert r.status_code == 200, r.text
        resumed = r.json()
        assert resumed["mode"] == "agent" and resumed["handoff"] is None
        assert (await ana.get("/v1/inbox")).json()["entries"] == []
        [done] = (await ana.get("/v1/inbox?state=resolved")).json()["entries"]
        assert done["handoff_id"] == opened["handoff_id"] and done["resolved_at_ms"] is not None

    async with people.customer_api() as c:
        detail = await settled(c, session_id)
        assert detail["consumed_seq"] == 2
        assert "Hi Carol, Ana here." in [reply["text"] for reply in detail["replies"]]
        audit = await events_of(
            c,
            session_id,
            "session.handed_off",
            "handoff.claimed",
            "operator.replied",
            "operator.note_added",
            "handoff.released",
            "session.resumed",
        )
    assert [e["kind"] for e in audit] == [
        "session.handed_off",
        "handoff.claimed",
        "operator.replied",
        "operator.note_added",
        "handoff.released",
        "session.resumed",
    ]
    assert [e["data"]["by"] for e in audit] == [people.by("ana")] * 5 + [people.by("bob")]
    assert audit[0]["trace_id"] == TRACE
    assert "VIP customer" not in str(audit[3]["data"])  # a note's text stays off the trail


async def test_the_refusals_are_named(people: People) -> None:
    session_id = await answered_session(people)
    async with people.operator("ana") as ana, people.operator("bob") as bob:
        base = f"/v1/sessions/{session_id}"
        for path, body in (
            ("claim", {}),
            ("operator-messages", {"text": "hi"}),
            ("release", {}),
            ("resume", {}),
        ):
            r = await ana.post(f"{base}/{path}", json=body)
            assert (r.status_code, r.json()["error"]) == (409, "not_human"), (path, r.text)
            assert r.json()["message"].startswith(f"session {session_id}: ")

        await ana.post(f"{base}/handoff", json={"reason": "x"})
        r = await ana.post(f"{base}/operator-messages", json={"text": "hi"})
        assert (r.status_code, r.json()["error"]) == (409, "not_claimed")
        r = await ana.post(f"{base}/release")
        assert (r.status_code, r.json()["error"]) == (409, "not_claimed")
        assert (await ana.post(f"{base}/claim")).status_code == 200
        r = await bob.post(f"{base}/claim")
        assert (r.status_code, r.json()["error"]) == (409, "claimed")
        r = await bob.post(f"{base}/operator-messages", json={"text": "me too"})
        assert (r.status_code, r.json()["error"]) == (409, "not_claimed")
        r = await bob.post(f"{base}/resume")
        assert (r.status_code, r.json()["error"]) == (409, "claimed")

        for text in ("", "   "):
            r = await ana.post(f"{base}/operator-messages", json={"text": text})
            assert (r.status_code, r.json()["error"]) == (422, "invalid"), text
        r = await ana.post(f"{base}/notes", json={"text": " "})
        assert r.status_code == 422
        r = await ana.post(f"{base}/handoff", json={"reason": ""})
        assert r.status_code == 422
        r = await ana.post(f"{base}/claim", json={"ttl_s": 0})
        assert r.status_code == 422

        bodies = {"handoff": {"reason": "x"}, "operator-messages": {"text": "x"}}
        for method, path in (
            ("POST", "handoff"),
            ("POST", "claim"),
            ("POST", "operator-messages"),
            ("POST", "notes"),
            ("GET", "notes"),
            ("POST", "release"),
            ("POST", "resume"),
        ):
            body = bodies.get(path, {"text": "x"} if path == "notes" else None)
            r = await ana.request(method, f"/v1/sessions/nope/{path}", json=body)
            assert (r.status_code, r.json()["error"]) == (404, "not_found"), (path, r.text)


async def test_a_closed_or_blocked_session_is_not_handed_off(people: People) -> None:
    service = people.api.service
    closed = await answered_session(people, customer="carol")
    async with people.customer_api() as c:
        before = await settled(c, closed)
    now = service.clock.now_ms()
    lease = await service.store.lease.acquire("acme", closed, "test-sweep", 15_000)
    assert lease is not None
    await service.store.uow.commit(
        "acme",
        [
            CheckFence(closed, lease.fence, now),
            CloseSession("acme", closed, now, "idle", before["updated_at_ms"]),
        ],
    )
    await service.store.lease.release(lease)
    blocked = await answered_session(people, customer="dave")
    async with people.operator("ana") as ana:
        r = await ana.post(f"/v1/sessions/{closed}/handoff", json={"reason": "x"})
        assert (r.status_code, r.json()["error"]) == (409, "closed"), r.text
        r = await ana.post(
            "/v1/blocks", json={"channel": "web", "customer": "dave", "reason": "abuse"}
        )
        assert r.status_code == 201, r.text
        r = await ana.post(f"/v1/sessions/{blocked}/handoff", json={"reason": "x"})
        assert (r.status_code, r.json()["error"]) == (409, "blocked"), r.text


async def test_two_operators_racing_for_a_claim_one_wins(people: People) -> None:
    session_id = await handed_off(people)
    async with people.operator("ana") as ana, people.operator("bob") as bob:
        results = await asyncio.gather(
            ana.post(f"/v1/sessions/{session_id}/claim"),
            bob.post(f"/v1/sessions/{session_id}/claim"),
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 409], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 409)
        assert loser.json()["error"] == "claimed"
        winner = next(r for r in results if r.status_code == 200).json()["claimed_by"]
        [entry] = (await ana.get("/v1/inbox?state=claimed")).json()["entries"]
        assert entry["claimed_by"] == winner


async def test_an_operator_message_with_an_idempotency_key_is_sent_once(people: People) -> None:
    session_id = await handed_off(people)
    url = f"/v1/sessions/{session_id}/operator-messages"
    async with people.operator("ana") as ana:
        assert (await ana.post(f"/v1/sessions/{session_id}/claim")).status_code == 200
        first = await ana.post(url, json={"text": "On it."}, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 202, first.text
        again = await ana.post(url, json={"text": "On it."}, headers={"Idempotency-Key": "k1"})
        assert (again.status_code, again.json()) == (202, first.json())
        other = await ana.post(url, json={"text": "Other"}, headers={"Idempotency-Key": "k1"})
        assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")

        racing = await asyncio.gather(
            *(
                ana.post(url, json={"text": "Once."}, headers={"Idempotency-Key": "k2"})
                for _ in range(3)
            )
        )
        answers = [r.json() for r in racing if r.status_code == 202]
        assert answers and all(a == answers[0] for a in answers), [r.text for r in racing]
        assert all(r.status_code == 202 or r.json()["error"] == "in_progress" for r in racing), [
            r.text for r in racing
        ]

    async with people.customer_api() as c:
        detail = await settled(c, session_id)
        texts = [reply["text"] for reply in detail["replies"]]
        assert texts.count("On it.") == 1 and texts.count("Once.") == 1
        assert "Other" not in texts
        replied = await events_of(c, session_id, "operator.replied")
        assert len(replied) == 2


async def test_a_reply_waits_for_a_busy_session_then_says_so(people: People) -> None:
    service = people.api.service
    session_id = await handed_off(people)
    async with people.operator("ana") as ana:
        assert (await ana.post(f"/v1/sessions/{session_id}/claim")).status_code == 200
        # Another holder (a turn's driver) takes the session lease once the session's own
        # driver, woken by the claim, has let it go.
        lease = None
        for _ in range(200):
            lease = await service.store.lease.acquire("acme", session_id, "a-driver", 60_000)
            if lease is not None:
                break
            await asyncio.sleep(0.05)
        assert lease is not None
        try:
            r = await ana.post(
                f"/v1/sessions/{session_id}/operator-messages", json={"text": "hello"}
            )
        finally:
            await service.store.lease.release(lease)
        assert (r.status_code, r.json()["error"]) == (409, "session_busy"), r.text
        assert r.headers["Retry-After"] == "1"
        r = await ana.post(f"/v1/sessions/{session_id}/operator-messages", json={"text": "hello"})
        assert r.status_code == 202, r.text


async def test_a_reply_is_at_most_what_the_desk_sends(people: People) -> None:
    session_id = await handed_off(people)
    url = f"/v1/sessions/{session_id}/operator-messages"
    async with people.operator("ana") as ana:
        assert (await ana.post(f"/v1/sessions/{session_id}/claim")).status_code == 200
        r = await ana.post(url, json={"text": "x" * (MAX_TEXT + 1)})
        assert (r.status_code, r.json()["error"]) == (422, "invalid"), r.text
        assert [p["field"] for p in r.json()["problems"]] == ["text"], r.text
        r = await ana.post(url, json={"text": "x" * MAX_TEXT})
        assert r.status_code == 202, r.text
