"""Table tests of what an agent turn's commit learns of the customer's pace
(``service.turn_pace.paced``): a reply only when the result has one to send, nothing from
a REPLAY turn, the pipeline's own state patch kept."""

import pytest

from acf.domain.channels import Channel
from acf.domain.messages import InboundMessage
from acf.domain.pace import Pace, from_state
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.service.turn_pace import meta_of, paced

POLICY = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000, pace=True)
KEY = SessionKey("t1", "agent", "alice", Channel.WEB)
COMMIT_AT = 2000


def message(seq: int, at_ms: int) -> InboundMessage:
    return InboundMessage(f"m{seq}", "s1", KEY, seq, f"p{seq}", at_ms, f"text {seq}")


REPLY = PipelineResult.reply("Sure.")
NOTHING = PipelineResult(expects_more_input=True)  # waits for more, says nothing
STATEFUL = PipelineResult(segments=REPLY.segments, state_patch={"data": {"seen": True}})

PACED = [
    # id, result, replay, the pace learned (None: the result comes back unchanged)
    ("a reply: its time is recorded", REPLY, False, Pace(1, 300.0, 150.0, 300, COMMIT_AT)),
    ("nothing sent: no reply recorded", NOTHING, False, Pace(1, 300.0, 150.0, 300, None)),
    ("the pipeline's state kept beside it", STATEFUL, False, Pace(1, 300.0, 150.0, 300, 2000)),
    ("a REPLAY turn learns nothing", REPLY, True, None),
]


@pytest.mark.parametrize(
    ("result", "replay", "learned"), [c[1:] for c in PACED], ids=[c[0] for c in PACED]
)
def test_paced(result: PipelineResult, replay: bool, learned: Pace | None) -> None:
    messages = [message(1, 0), message(2, 300)]
    out = paced(result, POLICY, messages, {}, COMMIT_AT, replay)
    if learned is None:
        assert out is result
        return
    assert out.segments == result.segments
    patch = dict(out.state_patch or {})
    assert from_state(patch.pop("meta")["pace"]) == learned
    assert patch == dict(result.state_patch or {})


def test_a_replays_old_messages_never_move_the_pace_back() -> None:
    meta = {"pace": {"samples": 0, "gap_ms": 0.0, "spread_ms": 0.0, "last_at_ms": 9000}}
    assert paced(REPLY, POLICY, [message(1, 100)], meta, COMMIT_AT, True) is REPLY


def test_meta_of() -> None:
    assert meta_of({"meta": {"pace": 1}}) == {"pace": 1}
    assert meta_of({}) == {}
    assert meta_of({"meta": "junk"}) == {}
