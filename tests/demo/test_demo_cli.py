"""`acf demo`: five acts on the real embedded runtime (virtual clock), told as timelines."""

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from acf.demo import terminal_acts
from acf.entrypoints.cli import app
from acf.ports.checkpoints import Phase

ACTS = ["burst", "correction", "duplicate", "refund", "crash"]


def run_demo(*args: str, colour: bool = False) -> tuple[int, str]:
    env = {"COLUMNS": "160"} | ({"FORCE_COLOR": "1"} if colour else {})
    result = CliRunner().invoke(app, ["demo", *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def json_acts(*args: str) -> dict[str, dict[str, Any]]:
    code, out = run_demo("--json", *args)
    assert code == 0, out
    acts = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {a["act"]: a for a in acts}


@pytest.fixture(scope="module")
def acts() -> dict[str, dict[str, Any]]:
    return json_acts()


def kinds(act: dict[str, Any]) -> list[str]:
    return [row["kind"] for row in act["timeline"]]


def test_all_five_acts_run_and_keep_their_promises(acts: dict[str, dict[str, Any]]) -> None:
    assert list(acts) == ACTS
    for name, act in acts.items():
        assert act["passed"], (name, act["problems"])
        assert act["problems"] == []
        assert act["summary"]
        assert act["timeline"], name
        assert act["steps"], name
        offsets = [row["at_ms"] for row in act["timeline"]]
        assert offsets == sorted(offsets), name  # a timeline, in order
        assert offsets[0] == 0  # the customer's first message starts the act


def test_burst_four_fragments_one_reply(acts: dict[str, dict[str, Any]]) -> None:
    act = acts["burst"]
    facts = act["facts"]
    assert [s["action"] for s in act["steps"]].count("says") == 4
    assert facts["fragments"] == 4
    assert facts["windows"] == 1
    assert facts["turns"] == 1
    assert facts["replies"] == 1
    assert facts["orders_answered"] == ["1001"]
    assert kinds(act).count("message.received") == 4
    assert kinds(act).count("response.delivered") == 1
    assert "typing.started" in kinds(act)
    assert act["summary"].startswith("4 fragments → 1 turn → 1 reply")


def test_correction_supersedes_and_answers_only_the_corrected_order(
    acts: dict[str, dict[str, Any]],
) -> None:
    act = acts["correction"]
    facts = act["facts"]
    assert facts["superseded"] == 1
    assert facts["replies"] == 1
    assert facts["orders_answered"] == ["1002"]
    assert facts["orders_looked_up"] == ["1002"]  # cut before 1001 was even looked up
    timeline = kinds(act)
    assert timeline.index("turn.superseded") < timeline.index("response.delivered")
    (delivered,) = [r for r in act["timeline"] if r["kind"] == "response.delivered"]
    assert "1002" in delivered["detail"]
    assert "1001" not in delivered["detail"]
    assert "its reply never sent" in act["summary"]
    assert "about 1002 only" in act["summary"]
    categories = {r["kind"]: r["category"] for r in act["timeline"]}
    assert categories["turn.superseded"] == "supersede"
    assert categories["window.closed"] == "window"
    assert categories["tool.execution_started"] == "tool"
    assert categories["response.delivered"] == "delivery"


def test_duplicate_webhook_is_stored_once(acts: dict[str, dict[str, Any]]) -> None:
    act = acts["duplicate"]
    facts = act["facts"]
    assert facts["webhooks"] == 3
    assert facts["stored"] == 1
    assert facts["duplicates"] == 2
    assert facts["turns"] == 1
    assert facts["replies"] == 1
    assert facts["lookups"] == 1
    assert [s["action"] for s in act["steps"]] == ["says", "resent", "resent"]
    assert len({s["provider_message_id"] for s in act["steps"]}) == 1
    assert kinds(act).count("message.duplicate") == 2
    assert "stored once (2 x message.duplicate)" in act["summary"]


def test_refund_runs_once_and_only_after_the_yes(acts: dict[str, dict[str, Any]]) -> None:
    act = acts["refund"]
    facts = act["facts"]
    assert facts["confirmations_requested"] == 1
    assert facts["confirmations_resolved"] == 1
    assert facts["refund_calls_before_yes"] == 0
    assert facts["ledger_entries"] == 1
    assert facts["ledger_status"] == ["succeeded"]
    assert facts["backend_refund_calls"] == 1
    assert facts["refunds"] == 1
    assert facts["replies"] == 2
    assert act["steps"][-1]["action"] == "taps"
    assert act["steps"][-1]["text"] == "Yes"
    timeline = kinds(act)
    assert timeline.index("confirmation.requested") < timeline.index("tool.side_effect_completed")
    assert timeline.count("tool.side_effect_completed") == 1
    prompt = next(r for r in act["timeline"] if r["kind"] == "response.delivered")
    assert "[Yes] [No]" in prompt["detail"]
    assert act["summary"].startswith("1 refund executed, only after yes")
    assert "ledger: 1 entry succeeded, backend count 1" in act["summary"]


def test_crash_is_recovered_with_one_reply(acts: dict[str, dict[str, Any]]) -> None:
    act = acts["crash"]
    facts = act["facts"]
    assert facts["crashes"] == 1
    assert facts["crash_phase"] == "tool_returned"
    assert facts["attempts"] == 2
    assert facts["turns"] == 1
    assert facts["replies"] == 1
    assert facts["resent"] == 0
    assert facts["lost"] == 0
    assert facts["orders_answered"] == ["1005"]
    timeline = kinds(act)
    assert timeline.count("process.crashed") == 1
    assert timeline.index("process.crashed") < timeline.index("turn.committed")
    assert timeline.count("response.delivered") == 1
    crashed = next(r for r in act["timeline"] if r["kind"] == "process.crashed")
    assert crashed["category"] == "failure"
    assert act["summary"] == (
        "after the crash at tool_returned the turn was recovered (attempt 2): 1 reply, nothing lost"
    )


def test_one_act_can_be_chosen() -> None:
    chosen = json_acts("--act", "refund")
    assert list(chosen) == ["refund"]
    assert chosen["refund"]["passed"]
    both = json_acts("--act", "crash", "--act", "burst")
    assert list(both) == ["crash", "burst"]
    assert list(json_acts("--act", "duplicate,correction")) == ["duplicate", "correction"]


def test_an_unknown_act_is_refused() -> None:
    result = CliRunner().invoke(app, ["demo", "--act", "nope"])
    assert result.exit_code == 2
    assert "unknown act 'nope'" in result.output


def test_colours_per_category_unless_no_color() -> None:
    code, out = run_demo("--act", "correction", colour=True)
    assert code == 0, out
    assert "\x1b[33mturn.superseded" in out  # supersedes are yellow
    assert "\x1b[35mtool.execution_started" in out  # tools magenta
    code, out = run_demo("--act", "correction", "--no-color", colour=True)
    assert code == 0, out
    assert "\x1b[" not in out
    assert "turn.superseded" in out


def test_plain_output_has_the_headlines_and_summaries() -> None:
    code, out = run_demo("--no-color")
    assert code == 0, out
    for headline in [
        "A burst: four fragments while typing, one answer",
        "A correction while the answer is being worked out",
        "A duplicate webhook",
        "A refund: asked first, run once after the Yes button",
        "A crash in the middle of a turn, and the recovery",
    ]:
        assert headline in out
    assert out.count("✓ what this shows:") == 5
    assert 'ana says "hi"' in out
    assert "ben taps [Yes]" in out
    assert "process.crashed" in out
    assert "all 5 acts as promised" in out


def test_an_unmet_expectation_is_shown_in_red_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Crash after the reply is delivered instead: nothing is left to recover, so the
    # promised second attempt never happens and the act must say so.
    monkeypatch.setattr(terminal_acts, "CRASH_PHASE", Phase.DELIVERED)
    code, out = run_demo("--act", "crash", "--no-color")
    assert code == 1
    assert "✗ not as promised" in out
    assert "attempts: expected 2, got 1" in out
    assert "1 of 1 acts not as promised: crash" in out
    code, out = run_demo("--act", "crash", "--json")
    assert code == 1
    (act,) = [json.loads(line) for line in out.splitlines()]
    assert act["passed"] is False
    assert act["problems"] == ["attempts: expected 2, got 1"]
