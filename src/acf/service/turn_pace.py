"""The customer's pace learned by an agent turn's commit (issue 23; the estimate is
``domain.pace``): the state patch of ``meta.pace`` that rides in the commit's unit.

What a commit learns from: the turn's messages (when they arrived) and, only when the
committed result has segments to send, the reply's time (``replied_at_ms``: a commit that
sends nothing, one that only expects more input say, is no reply the customer answers). A
REPLAY turn learns nothing: its messages are old (they would move ``last_at_ms`` back), and
a person asked for it. A silent commit (the session left agent mode past the irreversible
gate) is not paced either: the caller does not ask.

The patch is checked against the state version the turn read, as every state write is; a
commit whose result carries no state of its own re-reads the state and learns again on a
``VersionConflict`` (``TurnOutcomes.commit``), so pace never turns a concurrent state change
into a failed attempt.
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from acf.domain.messages import InboundMessage
from acf.domain.pace import pace_patch
from acf.domain.policy import ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.domain.state import combine_patches


def paced(
    result: PipelineResult,
    policy: ChannelPolicy,
    messages: Sequence[InboundMessage],
    meta: Mapping[str, Any],
    at_ms: int,
    replay: bool,
) -> PipelineResult:
    """``result`` with the pace learned from ``messages``, committed at ``at_ms`` (``meta``:
    the state's ``meta`` as last read), or ``result`` itself when there is nothing to learn
    (pace off, ``replay``: a REPLAY turn, nothing new)."""
    if replay:
        return result
    received = [m.received_at_ms for m in messages]
    replied = at_ms if result.segments else None
    patch = pace_patch(meta, policy, received, replied)
    if patch is None:
        return result
    return replace(result, state_patch=combine_patches(dict(result.state_patch or {}), patch))


def meta_of(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state's ``meta`` (acf's part of the state contract; empty when absent)."""
    meta = state.get("meta")
    return meta if isinstance(meta, Mapping) else {}
