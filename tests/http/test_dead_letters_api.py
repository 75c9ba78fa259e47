"""``/v1/dead-letters`` over real HTTP (DESIGN §16, seed 004 Story 7): the tenant's letters
listed and read, another tenant's answering 404, and a replay accepted once (202, then
409) that runs as a REPLAY turn of the session with an empty range: the rules pipeline,
given no message, answers with its fallback."""

import asyncio
from typing import Any

import httpx

from acf.domain.ids import new_id
from acf.ports.dead_letters import DeadLetter, RecordDeadLetter
from tests.http.conftest import Api, settled


async def seeded(api: Api) -> tuple[str, DeadLetter]:
    """A session of acme with one answered turn, and a dead letter naming that turn."""
    async with api.client() as c:
        body = {"agent": "support", "customer": "ana", "client_message_id": "m1", "text": "hello"}
        sid = (await c.post("/v1/messages", json=body)).json()["session_id"]
        await settled(c, sid)
        (turn,) = (await c.get(f"/v1/sessions/{sid}/turns")).json()["items"]
    letter = DeadLetter(
        tenant="acme",
        dead_letter_id=new_id(),
        session_id=sid,
        agent="support",
        turn_id=turn["turn_id"],
        group_id=turn["group_id"],
        trace_id=turn["trace_id"],
        pipeline="rules",
        error="the agent service answered 503 three times",
        attempts=3,
        created_at_ms=api.service.clock.now_ms(),
        request={"messages": ["hello"]},
    )
    await api.service.store.uow.commit("acme", [RecordDeadLetter(letter)])
    return sid, letter


async def until_replayed(c: httpx.AsyncClient, dead_letter_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            body: dict[str, Any] = (await c.get(f"/v1/dead-letters/{dead_letter_id}")).json()
            if body["replay_turn_id"] is not None:
                return body
            await asyncio.sleep(0.05)


async def test_letters_are_listed_and_read_by_their_tenant_only(api: Api) -> None:
    sid, letter = await seeded(api)
    path = f"/v1/dead-letters/{letter.dead_letter_id}"
    async with api.client("acme") as acme, api.client("globex") as globex:
        (listed,) = (await acme.get("/v1/dead-letters")).json()["items"]
        assert listed == (await acme.get(path)).json()
        assert listed["dead_letter_id"] == letter.dead_letter_id
        assert (listed["session_id"], listed["turn_id"]) == (sid, letter.turn_id)
        assert (listed["pipeline"], listed["attempts"], listed["error"]) == (
            "rules",
            3,
            "the agent service answered 503 three times",
        )
        assert listed["request"] == {"messages": ["hello"]}
        assert listed["replay_requested_at_ms"] is None
        one = await acme.get("/v1/dead-letters", params={"session_id": sid, "limit": 5})
        assert len(one.json()["items"]) == 1
        other = await acme.get("/v1/dead-letters", params={"session_id": "another"})
        assert other.json()["items"] == []
        bad = await acme.get("/v1/dead-letters", params={"limit": 0})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid"

        assert (await globex.get("/v1/dead-letters")).json()["items"] == []
        hidden = await globex.get(path)
        assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
        refused = await globex.post(f"{path}/replay")
        assert refused.status_code == 404
    async with api.client(None) as anonymous:
        assert (await anonymous.get("/v1/dead-letters")).status_code == 401
    stored = await api.service.store.dead_letters.get("acme", letter.dead_letter_id)
    assert stored is not None and stored.replay_requested_at_ms is None


async def test_a_replay_is_accepted_once_and_runs_as_a_turn_with_no_messages(api: Api) -> None:
    sid, letter = await seeded(api)
    path = f"/v1/dead-letters/{letter.dead_letter_id}"
    async with api.client() as c:
        accepted = await c.post(f"{path}/replay")
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["session_id"] == sid
        again = await c.post(f"{path}/replay")
        assert again.status_code == 409 and again.json()["error"] == "already_replayed"
        unknown = await c.post(f"/v1/dead-letters/{new_id()}/replay")
        assert unknown.status_code == 404

        done = await until_replayed(c, letter.dead_letter_id)
        assert done["replay_requested_at_ms"] == accepted.json()["replay_requested_at_ms"]
        session = await settled(c, sid)
        assert [r["text"] for r in session["replies"]] == [
            "Hi from acme",
            "acme did not understand",  # the rules pipeline's fallback: it was asked nothing
        ]
        turns = (await c.get(f"/v1/sessions/{sid}/turns")).json()["items"]
        replay = turns[-1]
        assert replay["turn_id"] == done["replay_turn_id"] and len(turns) == 2
        assert replay["from_seq"] == replay["to_seq"] == 1
        assert replay["phase"] == "committed"
        assert replay["record"]["details"]["replay_of"] == letter.dead_letter_id
        kinds = ["dead_letter.replay_requested", "dead_letter.replayed"]
        events = (await c.get(f"/v1/sessions/{sid}/events", params={"kind": kinds})).json()
        assert [e["kind"] for e in events["items"]] == kinds
        assert {e["data"]["dead_letter_id"] for e in events["items"]} == {letter.dead_letter_id}
        assert (await c.post(f"{path}/replay")).status_code == 409
