"""The customer API's rates (docs/channels.md, "Rates: 429 or hold"): ``POST /v1/messages``,
``/v1/typing`` and ``/v1/sessions/{id}/agent-answer`` answer 429 with ``Retry-After`` at the
tenant's rate and at the customer's own rate on the channel (the firewall's ``limits``,
when it is on), storing nothing; a session the firewall holds is no reason to refuse: the
message is stored and the answer says ``held``.

Over real HTTP (the service on a SQLite file, uvicorn on loopback) on a VirtualClock, so the
minute and the day the customer's counts fall in are the test's: the accumulation windows
never close, no turn runs, and what is stored stays as it was taken.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from acf.bootstrap import open_service, read_settings
from acf.config.load import load_config
from acf.demo import demo_tools
from acf.domain.abuse import CustomerLimits
from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.channels import Channel
from acf.domain.ids import new_id
from acf.entrypoints.http.app import create_app
from acf.entrypoints.http.context import ApiSettings
from acf.entrypoints.http.limits import customer_wait_s, minute_wait_ms
from acf.ports.agent_sessions import SaveAgentSession
from acf.ports.api_keys import new_api_key
from acf.ports.firewall import DAY_MS, MINUTE_MS, BlockCustomer, RateCounts
from acf.testing.clock import VirtualClock
from tests.http.conftest import Api, config, free_port

START_MS = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS + 10_000
"""10 s into a minute (and into a UTC day's minute)."""


def body(text: str = "hello", cid: str = "c1", customer: str = "alice") -> dict[str, object]:
    return {"agent": "support", "customer": customer, "client_message_id": cid, "text": text}


def rate_config(rate: str = "50/second") -> dict[str, Any]:
    """acme: two messages a minute per web customer (a channel's limits over the tenant's);
    globex: three a day per customer."""
    out: dict[str, Any] = config(rate)
    out["tenants"]["acme"]["firewall"] = {
        "limits": {"per_minute": 100, "per_day": 1000},
        "channels": {"web": {"per_minute": 2, "per_day": 1000}},
        "banned_terms": {"terms": ["idiot"], "count": 1},
    }
    out["tenants"]["globex"]["firewall"] = {"limits": {"per_minute": 3, "per_day": 3}}
    return out


async def serve(tmp_path: Path, body: dict[str, Any], clock: VirtualClock) -> AsyncIterator[Api]:
    """``tests.http.conftest.serve_api`` on ``clock``."""
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    process = read_settings({"data_dir": tmp_path / "data"}, environ={})
    service = await open_service(
        load_config(path), process, builtin_tools=demo_tools(), clock=clock
    )
    await service.start()
    keys = {}
    for tenant in ("acme", "globex"):
        keys[tenant] = new_api_key()
        await service.api_keys.create(tenant, "test", keys[tenant], clock.now_ms())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service, ApiSettings()),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield Api(service, f"http://127.0.0.1:{port}", keys)
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
        await service.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START_MS)


@pytest.fixture
async def api(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Api]:
    async for served in serve(tmp_path, rate_config(), clock):
        yield served


@pytest.fixture
async def slow_api(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Api]:
    """Each tenant allowed two messages a minute (and ten typing signals)."""
    async for served in serve(tmp_path, rate_config("2/minute"), clock):
        yield served


async def awaiting(api: Api, tenant: str, session_id: str) -> str:
    """Makes the session's agent session await the answer to a question: its path."""
    now = api.service.clock.now_ms()
    row = AgentSessionRow(
        tenant,
        new_id(),
        session_id,
        "support",
        "orders",
        AgentSessionStatus.AWAITING_USER,
        now,
        now,
        agent_session_id="as-1",
        pending_ask_id="ask-1",
        pending_question="Which order?",
        asked_at_ms=now,
    )
    await api.service.store.uow.commit(tenant, [SaveAgentSession(row)])
    return f"/v1/sessions/{session_id}/agent-answer"


async def last_seq(client: httpx.AsyncClient, session_id: str) -> int:
    return int((await client.get(f"/v1/sessions/{session_id}")).json()["last_seq"])


def assert_429(answer: httpx.Response, wait_s: int | None = None) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"] == "rate_limited"
    retry = int(answer.headers["Retry-After"])
    assert retry == wait_s if wait_s is not None else 1 <= retry <= 60


# --- the pure decision -------------------------------------------------------------------

LIMITS = CustomerLimits(per_minute=2, per_day=5)
AT = START_MS  # 10 s into the minute


@pytest.mark.parametrize(
    ("counts", "now_ms", "expected"),
    [
        (RateCounts(minute=0, prev_minute=0, frac=0.1, day=0), AT, None),
        (RateCounts(minute=1, prev_minute=0, frac=0.1, day=1), AT, None),
        # this minute spent: in the next one it weighs (1 - frac) and must drop below 2,
        # just after the minute turns (2 * (1 - f) < 2 for any f > 0)
        (RateCounts(minute=2, prev_minute=0, frac=0.1, day=2), AT, 51),
        # the sliding minute: the previous minute's weighs (1 - frac); 1 + 2 * (1 - f) < 2
        # once f > 1/2, 15 s on
        (RateCounts(minute=1, prev_minute=2, frac=0.25, day=3), AT + 5_000, 16),
        (RateCounts(minute=1, prev_minute=1, frac=0.5, day=3), AT + 20_000, None),
        # a bucket's last millisecond still waits a whole second
        (RateCounts(minute=2, prev_minute=0, frac=0.99, day=2), AT + 49_999, 1),
        # the day spent: to the next UTC day, whatever the minute
        (RateCounts(minute=0, prev_minute=0, frac=0.1, day=5), AT, (DAY_MS - AT % DAY_MS) // 1000),
        (RateCounts(minute=2, prev_minute=0, frac=0.1, day=9), AT, (DAY_MS - AT % DAY_MS) // 1000),
    ],
)
def test_customer_wait_s(counts: RateCounts, now_ms: int, expected: int | None) -> None:
    assert customer_wait_s(counts, LIMITS, now_ms) == expected


M = 1_700_000_040_000 - 1_700_000_040_000 % MINUTE_MS
"""The start of a minute."""
THIRTY = CustomerLimits(per_minute=30, per_day=1000)


@pytest.mark.parametrize(
    ("minute", "prev_minute", "now_ms", "expected"),
    [
        # 45 counted in minute M (webhooks are never refused), asked at M + 59.5 s: in the
        # next minute 45 * (1 - f) < 30 once f > 1/3, at M + 80 s (not at M + 60 s)
        (45, 0, M + 59_500, 21),
        # just over, early in the minute: 1 + 30 * (1 - f) < 30 once f > 1/30 (M + 62 s),
        # not at the next minute (M + 120 s)
        (1, 30, M + 61_000, 2),
        (0, 31, M + 1_000, 1),
        (29, 30, M + 30_000, 29),  # 29 + 30 * (1 - f) < 30 once f > 29/30
        (30, 30, M + 30_000, 31),  # this minute spent: 30 * (1 - f) < 30 just after it turns
        (60, 60, M, 91),  # 60 * (1 - f) < 30 once f > 1/2 of the next minute
    ],
)
def test_customer_wait_solves_the_sliding_estimate(
    minute: int, prev_minute: int, now_ms: int, expected: int
) -> None:
    frac = (now_ms % MINUTE_MS) / MINUTE_MS
    counts = RateCounts(minute, prev_minute, frac, day=minute + prev_minute)
    wait = customer_wait_s(counts, THIRTY, now_ms)
    assert wait == expected
    assert not admitted_after(minute, prev_minute, 30, now_ms, wait * 1000 - 1000)
    assert admitted_after(minute, prev_minute, 30, now_ms, wait * 1000)


def admitted_after(minute: int, prev: int, limit: int, now_ms: int, wait_ms: int) -> bool:
    """Whether the sliding estimate at ``now_ms + wait_ms`` is under ``limit`` when the
    customer sent nothing meanwhile (exact, in integers)."""
    then = now_ms + wait_ms
    passed = then // MINUTE_MS - now_ms // MINUTE_MS
    counted = {0: (minute, prev), 1: (0, minute)}.get(passed, (0, 0))
    elapsed = then % MINUTE_MS
    return counted[0] * MINUTE_MS + counted[1] * (MINUTE_MS - elapsed) < limit * MINUTE_MS


@pytest.mark.parametrize("limit", [1, 2, 7, 30])
def test_minute_wait_is_the_first_millisecond_admitted(limit: int) -> None:
    """Over a grid of counts and instants: admitted after the wait, refused a millisecond
    before it."""
    for minute in range(3 * limit + 2):
        for prev in range(0, 3 * limit + 2, max(1, limit // 3)):
            for elapsed in (0, 1, 999, 15_000, 30_000, 45_001, 59_999):
                now = M + elapsed
                wait = minute_wait_ms(minute, prev, limit, now)
                assert admitted_after(minute, prev, limit, now, wait), (minute, prev, elapsed)
                if wait > 0:
                    assert not admitted_after(minute, prev, limit, now, wait - 1)


# --- the tenant's rate ---------------------------------------------------------------------


async def test_the_tenants_rate_is_429_on_messages_typing_and_agent_answers(
    slow_api: Api,
) -> None:
    async with slow_api.client() as c, slow_api.client("globex") as g:
        first = await c.post("/v1/messages", json=body(customer="ann"))
        assert first.status_code == 202, first.text
        sid = first.json()["session_id"]
        path = await awaiting(slow_api, "acme", sid)
        assert (await c.post("/v1/messages", json=body(customer="bob"))).status_code == 202
        assert_429(await c.post("/v1/messages", json=body(customer="cyd")))
        assert_429(await c.post(path, json={"ask_id": "ask-1", "text": "order 1234"}))
        assert await last_seq(c, sid) == 1  # the answer refused was not stored
        typing = {"agent": "support", "customer": "ann", "active": True}
        answers = [await c.post("/v1/typing", json=typing) for _ in range(11)]
        assert [a.status_code for a in answers] == [202] * 10 + [429]
        assert_429(answers[-1])
        assert (await g.post("/v1/messages", json=body(customer="ann"))).status_code == 202


# --- the customer's rate -------------------------------------------------------------------


async def test_the_customers_rate_per_minute_is_429_until_the_next_minute(
    api: Api, clock: VirtualClock
) -> None:
    async with api.client() as c:
        answers = [
            await c.post("/v1/messages", json=body(f"hi {n}", cid=f"a{n}")) for n in range(2)
        ]
        assert [a.status_code for a in answers] == [202, 202], answers[-1].text
        assert all(a.json()["held"] is None for a in answers)
        sid = answers[0].json()["session_id"]
        path = await awaiting(api, "acme", sid)
        over = await c.post("/v1/messages", json=body("hi 2", cid="a2"))
        assert_429(over, 51)  # 10 s into the minute: just past the next one
        assert "alice" in over.json()["message"] and "web" in over.json()["message"]
        assert_429(await c.post(path, json={"ask_id": "ask-1", "text": "order 1234"}), 51)
        typing = await c.post(
            "/v1/typing", json={"agent": "support", "customer": "alice", "active": True}
        )
        assert_429(typing, 51)
        assert await last_seq(c, sid) == 2  # nothing refused was stored
        other = await c.post("/v1/messages", json=body(cid="b0", customer="bob"))
        assert other.status_code == 202  # a customer's rate is their own
        clock.advance_to(START_MS + 2 * MINUTE_MS)  # the minute and the one before it empty
        later = await c.post("/v1/messages", json=body("hi 2", cid="a2"))
        assert later.status_code == 202, later.text
        assert later.json()["seq"] == 3


async def test_the_customers_rate_per_day_is_429_until_the_next_utc_day(
    api: Api, clock: VirtualClock
) -> None:
    async with api.client("globex") as g:
        for n in range(3):
            answer = await g.post("/v1/messages", json=body(f"hi {n}", cid=f"d{n}"))
            assert answer.status_code == 202, answer.text
        to_tomorrow = (DAY_MS - START_MS % DAY_MS) // 1000
        assert_429(await g.post("/v1/messages", json=body("hi 3", cid="d3")), to_tomorrow)
        clock.advance_to(START_MS + to_tomorrow * 1000)
        assert (await g.post("/v1/messages", json=body("hi 3", cid="d3"))).status_code == 202


async def test_a_tenant_without_the_firewall_has_no_customer_rate(
    tmp_path: Path, clock: VirtualClock
) -> None:
    off = rate_config()
    off["tenants"]["acme"]["firewall"] |= {"enabled": False}
    async for served in serve(tmp_path, off, clock):
        async with served.client() as c:
            answers = [await c.post("/v1/messages", json=body(cid=f"o{n}")) for n in range(4)]
        assert [a.status_code for a in answers] == [202] * 4


class UnreadableCounters:
    """Counters whose storage is away (Redis and its fallback)."""

    async def hit(self, tenant: str, channel: Channel, customer: str, at_ms: int) -> RateCounts:
        raise OSError("counters away")

    async def peek(self, tenant: str, channel: Channel, customer: str, at_ms: int) -> RateCounts:
        raise OSError("counters away")

    async def prune(self, tenant: str, before_ms: int) -> int:
        raise OSError("counters away")

    async def tallies(
        self, tenant: str, channel: Channel, customer: str, buckets: Sequence[tuple[str, int]]
    ) -> list[int]:
        raise OSError("counters away")


async def test_counters_that_cannot_be_read_refuse_no_message(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.service.store, "customer_rates", UnreadableCounters())
    async with api.client() as c:
        answers = [await c.post("/v1/messages", json=body(cid=f"u{n}")) for n in range(3)]
    assert [a.status_code for a in answers] == [202] * 3  # the third is over acme's 2 a minute


# --- held sessions ---------------------------------------------------------------------------


async def test_a_session_in_cooldown_takes_the_message_and_says_held(api: Api) -> None:
    async with api.client() as c:
        trigger = await c.post("/v1/messages", json=body("you idiot", cid="h0"))
        assert trigger.status_code == 202  # not refused: the message that trips it is held
        assert trigger.json()["held"] == "cooldown"
        headers = {"Idempotency-Key": "held-1"}
        held = await c.post("/v1/messages", json=body("hello?", cid="h1"), headers=headers)
        assert held.status_code == 202, held.text
        assert (held.json()["held"], held.json()["seq"]) == ("cooldown", 2)
        again = await c.post("/v1/messages", json=body("hello?", cid="h1"), headers=headers)
        assert again.json() == held.json()  # the stored answer, held included
        assert await last_seq(c, held.json()["session_id"]) == 2


async def test_a_blocked_customer_s_message_is_taken_and_held(api: Api) -> None:
    store = api.service.store
    async with api.client() as c:
        first = await c.post("/v1/messages", json=body(cid="k0", customer="kim"))
        assert first.status_code == 202
        block = BlockCustomer(
            "acme", new_id(), Channel.WEB, "kim", "test", "op", START_MS, "trace-block"
        )
        await store.uow.commit("acme", [block])
        held = await c.post("/v1/messages", json=body(cid="k1", customer="kim"))
        assert held.status_code == 202, held.text
        assert held.json()["held"] == "blocked"
        assert held.json()["session_id"] == first.json()["session_id"]
