"""The load test (`make load`, seed 004 Story 8): its parts in-process, then a 40-second run
of the real thing: Locust in its own process, 50 web-chat customers against `acf serve`
routing between the fake model and the fake agent service, the invariants checked through
the API at the end.

The CI run asserts that nothing failed and that the invariants hold, never a timing. It
sends half the conversations to the agent service (the full run: 30 %) so that at least 20
delegated conversations are in flight at once within 40 s and 50 customers. 40 s keeps
every figure asserted below at about twice its bound on a calm machine (a 30-s run gave 210
conversations, 98 direct and 112 delegated, 31 at once; under a load average of 10 it gave
88), and the test runs alone (`solo`), after the parallel part of `make test`.
"""

import json
import random
from pathlib import Path

import pytest

from acf.bench.load import main
from acf.bench.load_checks import (
    AGENT_PREFIX,
    Customer,
    Invariants,
    ReplyBody,
    SessionBody,
    Snapshot,
    TurnBody,
    session_problems,
)
from acf.bench.load_report import (
    MEMORY_SPAN,
    LoadRun,
    ProcessSample,
    Readings,
    most_at_once,
)
from acf.bench.load_script import COMMAND, Mix, Reading, Record, Route, Seen, Timeline, plan
from acf.bench.load_servers import ANSWER, config_text
from acf.config.load import load_config
from acf.config.pipelines import RouterPipelineFields


def test_plans_follow_the_mix() -> None:
    rng = random.Random(7)
    mix = Mix(delegated=0.3, correction=0.2, polling=0.2, followup=0.3)
    plans = [plan(rng, mix) for _ in range(4000)]
    delegated = [p for p in plans if p.route is Route.AGENT]
    assert 0.27 < len(delegated) / len(plans) < 0.33
    assert 0.17 < sum(p.corrected for p in plans) / len(plans) < 0.23
    assert 0.17 < sum(p.reading is Reading.POLL for p in plans) / len(plans) < 0.23
    assert 0.27 < sum(len(p.exchanges) == 2 for p in plans) / len(plans) < 0.33
    for p in plans:
        first, *later = p.exchanges
        burst = len(first.texts) - first.corrected
        assert 1 <= burst <= 3
        assert first.pauses_s[0] == 0
        assert all(0.1 <= s <= 0.4 for s in first.pauses_s[1:burst])
        if first.corrected:
            assert 0.3 <= first.pauses_s[-1] <= 1.2
        for follow_up in later:  # after reading the reply; never corrected
            assert 1 <= len(follow_up.texts) <= 2 and not follow_up.corrected
            assert 0.5 <= follow_up.pauses_s[0] <= 2.0
        # Only the first message names the route: the rest rely on the router.
        texts = [t for e in p.exchanges for t in e.texts]
        assert texts[0].startswith(f"{COMMAND} ") == (p.route is Route.AGENT)
        assert not any(t.startswith(COMMAND) for t in texts[1:])
        assert p.messages == len(texts)


def _event(kind: str, turn_id: str, **data: object) -> dict[str, object]:
    return {"kind": kind, "turn_id": turn_id, "data": data}


def test_the_first_visible_chunk_is_of_a_turn_holding_the_last_message() -> None:
    t = Timeline()
    t.observe(_event("turn.started", "A", from_seq=0, to_seq=2), 1.0)
    t.observe(_event("reply.draft", "A", text="Hel"), 1.1)
    # Message 3 (a correction) accepted at 1.2: A's later drafts do not answer it.
    t.observe(_event("reply.draft", "A", text="lo"), 1.3)
    t.observe(_event("turn.superseded", "A"), 1.4)
    t.observe(_event("turn.started", "B", from_seq=0, to_seq=3), 1.5)
    assert t.first_visible(1.2, 3) is None
    t.observe(_event("reply.draft", "B", text="Sure"), 1.6)
    t.observe(_event("response.delivered", "B", text="Sure, R-2."), 2.0)
    assert t.first_visible(1.2, 3) == 1.6
    assert t.started(1.2, 3) == 1.5  # the window closed over message 3
    assert t.reply(3) == (2.0, "Sure, R-2.")
    seen = Seen.of(t, 1.2, 3)
    assert seen.turn_started_ms == pytest.approx(300)
    assert seen.first_visible_ms == pytest.approx(400)
    assert seen.reply_ms == pytest.approx(800)
    assert t.first_visible(0.0, 2) == 1.1  # for message 2, A's first draft counted
    assert t.failure is None


def test_an_absorbed_message_counts_the_turn_that_absorbed_it() -> None:
    t = Timeline()
    t.observe(_event("turn.started", "A", to_seq=1), 1.0)
    t.observe(_event("turn.absorbed", "A", from_seq=1, to_seq=2), 1.3)
    t.observe(_event("reply.draft", "A", text="Hi"), 1.4)
    t.observe(_event("turn.failed", "A", error="boom"), 1.5)
    assert t.first_visible(1.2, 2) == 1.4
    assert t.started(1.2, 2) == 1.3
    assert t.reply(2) is None
    assert t.failure is not None and t.failure.startswith("turn.failed")


def test_a_record_knows_when_locust_interrupted_it() -> None:
    r = Record(
        user=1,
        route=Route.AGENT,
        reading=Reading.STREAM,
        corrected=False,
        exchanges=1,
        planned=2,
        started=1,
    )
    assert r.interrupted
    assert not r.model_copy(update={"error": "POST answered 500"}).interrupted
    assert not r.model_copy(update={"completed": True}).interrupted
    assert Record.model_validate_json(r.model_dump_json()) == r


def _snap(
    last_seq: int,
    turns: list[tuple[str, str, int, int]],
    replies: list[tuple[str, int, str, str]],
) -> Snapshot:
    session = SessionBody(
        session_id="s",
        last_seq=last_seq,
        consumed_seq=last_seq,
        replies=[
            ReplyBody(outbox_id=i, turn_id=t, position=p, text=x, status=st)
            for i, (t, p, x, st) in enumerate(replies)
        ],
    )
    return Snapshot(
        session, [TurnBody(turn_id=t, phase=ph, from_seq=f, to_seq=to) for t, ph, f, to in turns]
    )


DIRECT = Customer(Route.DIRECT, accepted=3, sent=3)
AGENT = Customer(Route.AGENT, accepted=3, sent=3)
ECHO = f"{AGENT_PREFIX}where is my order"


@pytest.mark.parametrize(
    ("snap", "customer", "expected"),
    [
        pytest.param(  # a superseded run, then one turn over all three messages
            _snap(
                3, [("A", "superseded", 0, 2), ("B", "committed", 0, 3)], [("B", 0, ANSWER, "sent")]
            ),
            DIRECT,
            [],
            id="superseded-then-one-reply",
        ),
        pytest.param(  # the correction came after the first reply: two turns, two replies
            _snap(
                3,
                [("A", "committed", 0, 2), ("B", "committed", 2, 3)],
                [("A", 0, ECHO, "sent"), ("B", 0, ECHO, "delivered")],
            ),
            AGENT,
            [],
            id="two-turns-two-replies",
        ),
        pytest.param(  # a reply in two parts, read in their order
            _snap(
                1,
                [("A", "committed", 0, 1)],
                [("A", 1, " my order", "sent"), ("A", 0, AGENT_PREFIX + "where is", "sent")],
            ),
            Customer(Route.AGENT, accepted=1, sent=1),
            [],
            id="two-parts",
        ),
        pytest.param(
            _snap(
                3, [("B", "committed", 0, 3)], [("B", 0, ANSWER, "sent"), ("B", 0, ANSWER, "sent")]
            ),
            DIRECT,
            ["s: turn B has part 0 2 times (duplicate)"],
            id="duplicate",
        ),
        pytest.param(
            _snap(
                3, [("A", "committed", 0, 2), ("B", "committed", 2, 3)], [("B", 0, ANSWER, "sent")]
            ),
            DIRECT,
            ["s: turn A committed without a reply (lost)"],
            id="lost",
        ),
        pytest.param(
            _snap(3, [("A", "committed", 0, 3), ("B", "failed", 3, 3)], [("A", 0, ANSWER, "sent")]),
            DIRECT,
            ["s: turn B failed"],
            id="failed-turn",
        ),
        pytest.param(
            _snap(
                3,
                [("A", "committed", 0, 2), ("B", "committed", 1, 3)],
                [("A", 0, ANSWER, "sent"), ("B", 0, ANSWER, "sent")],
            ),
            DIRECT,
            ["s: message 2 is in 2 committed turns"],
            id="message-twice",
        ),
        pytest.param(  # the router fell back to the model: not the agent's answer
            _snap(3, [("A", "committed", 0, 3)], [("A", 0, ANSWER, "sent")]),
            AGENT,
            [f"s: turn A (agent) was answered {ANSWER[:60]!r}"],
            id="fallback",
        ),
        pytest.param(
            _snap(3, [("A", "committed", 0, 3)], [("A", 0, ANSWER, "cut")]),
            DIRECT,
            ["s: reply 0 of turn A is cut"],
            id="last-reply-cut",
        ),
        pytest.param(
            _snap(2, [("A", "committed", 0, 2)], [("A", 0, ANSWER, "sent")]),
            DIRECT,
            ["s: 3 messages were accepted, it holds 2"],
            id="message-lost",
        ),
        pytest.param(  # Locust stopped the customer after posting, before the 202 was read
            _snap(3, [("A", "committed", 0, 3)], [("A", 0, ANSWER, "sent")]),
            Customer(Route.DIRECT, accepted=2, sent=3),
            [],
            id="interrupted",
        ),
    ],
)
def test_session_invariants(snap: Snapshot, customer: Customer, expected: list[str]) -> None:
    assert session_problems(snap, customer, ANSWER) == expected


def test_an_unsettled_session_is_a_problem() -> None:
    snap = _snap(3, [("A", "running", 0, 3)], [])
    assert not snap.settled
    assert "s: not settled (consumed 3 of 3)" in session_problems(snap, DIRECT, ANSWER)


def test_most_at_once() -> None:
    assert most_at_once([]) == 0
    assert most_at_once([(0, 2), (1, 3), (2.5, 4), (5, 6)]) == 2
    assert most_at_once([(0, 10), (1, 9), (2, 8)]) == 3


def test_memory_is_read_before_and_after_a_thousand_conversations() -> None:
    readings = Readings(warmup=100)
    for i in range(0, 1300, 50):
        readings.samples.append(ProcessSample(i / 10, 100 + i / 100, i / 100, i))
    figures = readings.figures()
    assert figures["before_at_conversations"] == 100
    assert figures["after_at_conversations"] == 100 + MEMORY_SPAN
    assert figures["ratio"] == pytest.approx(111 / 101)
    assert readings.cpu_share() == pytest.approx(0.1)
    short = Readings(warmup=100, samples=readings.samples[:10])
    assert short.figures()["ratio"] is None


def _record(route: Route, reading: Reading, started: float, ended: float, *seen: Seen) -> Record:
    return Record(
        user=1,
        route=route,
        reading=reading,
        corrected=False,
        exchanges=len(seen),
        planned=len(seen),
        started=started,
        ended=ended,
        session_id=f"s{started}",
        accepted=len(seen),
        last_seq=len(seen),
        seen=list(seen),
        completed=True,
    )


def test_the_figures_of_a_run() -> None:
    fast = Seen(turn_started_ms=600, first_visible_ms=1600, reply_ms=2600)
    slow = Seen(turn_started_ms=1200, first_visible_ms=2400, reply_ms=4000)
    records = [
        _record(Route.AGENT, Reading.STREAM, 0, 5, fast, slow),  # a follow-up
        _record(Route.AGENT, Reading.STREAM, 1, 4, fast),
        _record(Route.DIRECT, Reading.POLL, 2, 3, Seen(reply_ms=3000)),
        _record(Route.DIRECT, Reading.STREAM, 6, 7, fast).model_copy(
            update={"completed": False, "error": "POST answered 500"}
        ),
    ]
    run = LoadRun({}, records, [], {}, Readings(warmup=100), Invariants())
    assert run.first_visible().n == 4  # per exchange read over SSE
    assert run.first_visible(Route.AGENT).max_ms == 2400
    assert run.window(Route.AGENT).max_ms == 1200
    assert run.start_to_visible(Route.DIRECT).p50_ms == 1000
    assert run.reply_seen(Reading.POLL).n == 1
    assert run.delegated_at_once() == 2
    assert run.errors == 1 and not run.correct
    verdicts = run.verdicts()
    assert verdicts["errors: 0"] is False
    assert verdicts[f"resident memory after {MEMORY_SPAN} conversations <= x1.1 of before"] is None
    report = run.as_json()
    assert report["conversations"]["with_a_follow_up"] == 1
    assert report["conversations"]["error_messages"] == {"POST answered 500": 1}


def test_the_configuration_routes_between_the_model_and_the_agent_service(tmp_path: Path) -> None:
    path = tmp_path / "load.yaml"
    path.write_text(config_text("http://127.0.0.1:9/v1", "http://127.0.0.1:8", "500/second"))
    text = path.read_text()
    assert "${ACF_LOAD_LLM_KEY}" in text and "${ACF_LOAD_AGENT_KEY}" in text  # never literals
    config = load_config(path).config
    pipeline = config.tenants["load"].agents["web"].pipeline
    assert isinstance(pipeline, RouterPipelineFields)
    assert {r: c.kind for r, c in pipeline.routes.items()} == {
        "direct": "llm",
        "agent": "agent_service",
    }
    assert [(r.route, r.commands) for r in pipeline.rules] == [("agent", [COMMAND])]
    assert pipeline.default == pipeline.fallback == "direct"
    assert config.tenants["load"].channels == {}  # the web channel's default accumulation


@pytest.mark.solo  # 50 customers load the machine: it runs alone, after the parallel part
@pytest.mark.timeout(300)  # about 70 s alone; over 120 s (the default) when it shared the machine
def test_a_40_s_run_has_no_error_and_keeps_the_invariants(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    argv = ["--users", "50", "--spawn-rate", "25", "--duration", "40", "--delegated", "0.5"]
    code = main([*argv, "--settle", "15", "--logs", str(tmp_path / "logs"), "--json", str(out)])
    report = json.loads(out.read_text())
    conversations = report["conversations"]
    invariants = report["invariants"]
    # A request whose keep-alive connection the server had just closed is sent again (a
    # message is deduplicated by its client id); any other failure counts.
    assert report["http_failures"] == report["http_failures_resent_and_answered"], report[
        "http_failure_messages"
    ]
    assert conversations["errors"] == 0, conversations["error_messages"]
    assert report["errors"] == 0
    assert invariants["problems"] == [] and invariants["held"]
    assert invariants["dead_letters"] == 0 and invariants["failed_turn_events"] == 0
    assert invariants["unsettled"] == 0
    assert report["log_problems"] == []  # acf's own log; the fakes' is reported apart
    assert code == 0
    assert conversations["completed"] >= 100  # the run did run
    assert conversations["by_route"]["agent"] >= 50 and conversations["by_route"]["direct"] >= 50
    assert conversations["completed"] <= invariants["sessions"] <= conversations["total"]
    assert report["delegated_conversations_at_once"] >= 20
    assert report["requests"] > conversations["messages"]
