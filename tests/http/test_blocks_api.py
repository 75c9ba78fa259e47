"""The block list, the holds and the abuse summary over real HTTP: blocking moves the
customer's open sessions to ``blocked`` (audited with the key), a second block is refused,
lifting gives them back to the agent, the holds show the sessions the agent does not answer
with their held messages, and the summary counts what the firewall's events say."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_trace_id
from acf.ports.event_store import AppendEvent
from tests.http.people import People, answered_session, events_of, handed_off, say, serve_people


@pytest.fixture
async def people(tmp_path: Path) -> AsyncIterator[People]:
    async for served in serve_people(tmp_path):
        yield served


async def test_a_block_holds_the_customer_until_it_is_lifted(people: People) -> None:
    session_id = await answered_session(people, customer="dave")
    async with people.operator("ana") as ana, people.operator("bob") as bob:
        r = await ana.post(
            "/v1/blocks",
            json={"channel": "web", "customer": "dave", "reason": "insults", "expires_in_s": 60},
        )
        assert r.status_code == 201, r.text
        block = r.json()
        assert (block["channel"], block["customer"], block["reason"]) == ("web", "dave", "insults")
        assert block["created_by"] == people.by("ana")["key_id"] and block["active"] is True
        assert block["expires_at_ms"] == block["created_at_ms"] + 60_000
        assert block["lifted_at_ms"] is None

        r = await bob.post(
            "/v1/blocks", json={"channel": "web", "customer": "dave", "reason": "again"}
        )
        assert (r.status_code, r.json()["error"]) == (409, "blocked"), r.text
        listed = (await bob.get("/v1/blocks")).json()["blocks"]
        assert [b["block_id"] for b in listed] == [block["block_id"]]

        [hold] = (await ana.get("/v1/holds")).json()["sessions"]
        assert (hold["session_id"], hold["mode"]) == (session_id, "blocked")
        assert hold["mode_reason"] == f"block:{block['block_id']}"
        assert (hold["customer"], hold["channel"], hold["agent"]) == ("dave", "web", "support")

        assert (await bob.delete(f"/v1/blocks/{block['block_id']}")).status_code == 204
        assert (await bob.get("/v1/blocks")).json()["blocks"] == []
        [lifted] = (await bob.get("/v1/blocks?include_lifted=true")).json()["blocks"]
        assert lifted["lifted_by"] == people.by("bob")["key_id"] and lifted["active"] is False
        assert (await ana.get("/v1/holds")).json()["sessions"] == []
        r = await bob.delete(f"/v1/blocks/{block['block_id']}")
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
        r = await bob.delete("/v1/blocks/no-such-block")
        assert (r.status_code, r.json()["error"]) == (404, "not_found")

    async with people.customer_api() as c:
        audit = await events_of(c, session_id, "customer.blocked", "customer.unblocked")
    assert [e["kind"] for e in audit] == ["customer.blocked", "customer.unblocked"]
    assert [e["data"]["by"] for e in audit] == [
        people.by("ana")["key_id"],
        people.by("bob")["key_id"],
    ]


async def test_a_block_body_is_checked(people: People) -> None:
    async with people.operator("ana") as ana:
        for body in (
            {"channel": "fax", "customer": "dave", "reason": "x"},
            {"channel": "web", "customer": "", "reason": "x"},
            {"channel": "web", "customer": "dave", "reason": " "},
            {"channel": "web", "customer": "dave", "reason": "x", "expires_in_s": 0},
            {"channel": "web", "customer": "dave", "reason": "x", "extra": 1},
        ):
            r = await ana.post("/v1/blocks", json=body)
            assert (r.status_code, r.json()["error"]) == (422, "invalid"), body


async def test_the_holds_list_handed_off_sessions_with_their_held_messages(
    people: People,
) -> None:
    session_id = await handed_off(people, customer="erin")
    async with people.customer_api() as c:
        await say(c, "erin-2", "hello?", customer="erin")
        await say(c, "erin-3", "anyone?", customer="erin")
    async with people.operator("bob") as bob:
        [hold] = (await bob.get("/v1/holds")).json()["sessions"]
    assert (hold["session_id"], hold["mode"], hold["held_messages"]) == (session_id, "human", 2)


async def test_the_abuse_summary_counts_the_firewalls_events(people: People) -> None:
    service = people.api.service
    session_id = await answered_session(people, customer="dave")
    now = service.clock.now_ms()
    correlation = Correlation("acme", new_trace_id(), session_id=session_id)

    def event(kind: EventKind, at_ms: int = now, **data: object) -> AppendEvent:
        return AppendEvent(FabricEvent(kind, at_ms, correlation, data))

    await service.store.uow.commit(
        "acme",
        [
            event(EventKind.ABUSE_SUSPECTED, detector="flood"),
            event(EventKind.ABUSE_SUSPECTED, detector="flood"),
            event(EventKind.ABUSE_SUSPECTED, detector="banned_terms"),
            event(EventKind.ABUSE_SUSPECTED, now - 3 * 86_400_000, detector="repeated"),
            event(EventKind.ABUSE_COOLDOWN_STARTED),
            event(EventKind.ABUSE_MESSAGES_DROPPED, from_seq=1, to_seq=4),
            event(EventKind.RATE_EXCEEDED, channel="sms"),
        ],
    )
    async with people.operator("ana") as ana:
        r = await ana.post(
            "/v1/blocks", json={"channel": "web", "customer": "dave", "reason": "abuse"}
        )
        assert r.status_code == 201
        summary = (await ana.get("/v1/abuse/summary")).json()
        assert summary["suspected"] == {
            "flood": 2,
            "repeated": 0,
            "banned_terms": 1,
            "injection_storm": 0,
            "policy_blocks": 0,
        }
        assert summary["cooldowns_started"] == 1 and summary["dropped_messages"] == 3
        assert summary["rate_exceeded"] == 1 and summary["blocks_active"] == 1
        assert summary["since_ms"] == pytest.approx(now - 86_400_000, abs=60_000)
        assert summary["truncated"] is False
        older = (await ana.get(f"/v1/abuse/summary?since_ms={now - 4 * 86_400_000}")).json()
        assert older["suspected"]["repeated"] == 1
        async with people.operator("ana", "globex") as other:
            theirs = (await other.get("/v1/abuse/summary")).json()
        assert theirs["suspected"]["flood"] == 0 and theirs["blocks_active"] == 0
