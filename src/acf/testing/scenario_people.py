"""The people part of the scenario format (issue #22): steps where an operator acts through
the real desk or the block list changes (``handoff``, ``claim``, ``operator_reply``,
``release``, ``resume``, ``block``, ``unblock``), the scenario's ``handoff:`` and
``firewall:`` policy, and the expectations on who answered (``modes``, ``agent_turns``,
``turn_kinds``, ``agent_answered_after``, ``notices``, ``operator_replies``). Documented in
``docs/scenarios.md``."""

from collections import Counter
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from acf.config.people import FirewallFields, HandoffFields, people_policy
from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.handoff import PeoplePolicies, PeoplePolicy
from acf.domain.modes import TurnKind
from acf.domain.turns import TurnPhase
from acf.ports.handoffs import Operator
from acf.ports.session_store import SessionRecord
from acf.service.continuity import is_notice
from acf.testing import invariants
from acf.testing.harness import TENANT, Harness
from acf.testing.people import People, operator

if TYPE_CHECKING:
    from acf.testing.scenarios import Scenario

OPERATOR_AUTHOR = "operator"
SYSTEM_AUTHOR = "system"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperatorSpec(_Model):
    name: str = "Alice"
    key_id: str | None = None
    """Default ``key_<name>``."""

    def operator(self) -> Operator:
        return operator(self.name, self.key_id)


class PersonStep(_Model):
    """Who acts on whose session; ``conflict``: the refusal the step expects (``claimed``,
    ``not_claimed``, ``not_human``, ``session_busy``, ``closed``, ``blocked``)."""

    customer: str = "alice"
    channel: Channel = Channel.WEB
    tenant: str = TENANT
    by: OperatorSpec = OperatorSpec()
    conflict: str | None = None


class HandoffStep(PersonStep):
    reason: str = "operator"


class ClaimStep(PersonStep):
    ttl_ms: int | None = None


class ReplyStep(PersonStep):
    text: str
    buttons: list[str] | None = None
    answers_through_seq: int | None = None


class NoteStep(PersonStep):
    """``release`` and ``resume``: the note (internal, or for the agent)."""

    note: str | None = None


class BlockStep(PersonStep):
    reason: str = "abuse"
    expires_in_ms: int | None = None


def policies(handoff: HandoffFields | None, firewall: FirewallFields | None) -> PeoplePolicies:
    """Every tenant's policy: the scenario's ``handoff:`` (else the product's defaults) and
    ``firewall:`` (else off: a scenario about something else is never cooled down)."""
    policy: PeoplePolicy = people_policy(
        handoff or HandoffFields(), firewall or FirewallFields(enabled=False)
    )

    def of(tenant: str) -> PeoplePolicy:
        return policy

    return of


async def act(
    h: Harness,
    *,
    handoff: HandoffStep | None = None,
    claim: ClaimStep | None = None,
    operator_reply: ReplyStep | None = None,
    release: NoteStep | None = None,
    resume: NoteStep | None = None,
    block: BlockStep | None = None,
    unblock: PersonStep | None = None,
) -> list[str]:
    """Run the one step given; the problems (an unexpected refusal, or none expected)."""
    people = People(h)
    step: PersonStep
    try:
        if handoff is not None:
            step = handoff
            await people.hand_off(
                step.customer, handoff.reason, step.by.operator(), step.channel, step.tenant
            )
        elif claim is not None:
            step = claim
            await people.claim(
                step.customer, step.by.operator(), claim.ttl_ms, step.channel, step.tenant
            )
        elif operator_reply is not None:
            step = r = operator_reply
            await people.reply(
                r.customer,
                r.text,
                r.by.operator(),
                r.buttons,
                r.answers_through_seq,
                r.channel,
                r.tenant,
            )
        elif release is not None:
            step = release
            await people.release(
                step.customer, release.note, step.by.operator(), step.channel, step.tenant
            )
        elif resume is not None:
            step = resume
            await people.resume(
                step.customer, resume.note, step.by.operator(), step.channel, step.tenant
            )
        elif block is not None:
            step = b = block
            await people.block(
                b.customer, b.reason, b.by.operator(), b.expires_in_ms, b.channel, b.tenant
            )
        elif unblock is not None:
            step = unblock
            await people.unblock(step.customer, step.by.operator(), step.channel, step.tenant)
        else:
            return []
    except Conflict as refused:
        if step.conflict == refused.reason:
            return []
        return [f"{type(step).__name__} for {step.customer}: refused ({refused.reason})"]
    if step.conflict is not None:
        return [f"{type(step).__name__} for {step.customer}: expected {step.conflict}, it went"]
    return []


async def check(h: Harness, s: "Scenario") -> list[str]:
    """The people expectations of ``s`` against the store."""
    e = s.expect
    wanted = (
        e.modes,
        e.agent_turns,
        e.turn_kinds,
        e.agent_answered_after,
        e.notices,
        e.operator_replies,
    )
    if not any(wanted):
        return []
    sessions = await invariants.sessions_of(h.store, s.tenants)
    by_customer: dict[str, list[SessionRecord]] = {}
    for session in sorted(sessions, key=lambda x: x.created_at_ms):
        by_customer.setdefault(session.key.customer, []).append(session)
    problems: list[str] = []
    for customer, mode in e.modes.items():
        newest = by_customer.get(customer, [])[-1:]
        got = newest[0].mode.value if newest else None
        if got != mode.value:
            problems.append(f"mode of {customer}: expected {mode.value}, got {got}")
    kinds: Counter[TurnKind] = Counter()
    agent_turns: Counter[str] = Counter()
    authors: Counter[tuple[str, str]] = Counter()
    last_agent: dict[str, tuple[int, int]] = {}
    for session in sessions:
        customer = session.key.customer
        turns = await h.store.turns.list_turns(session.tenant, session.session_id)
        for turn in turns:
            if turn.phase is TurnPhase.COMMITTED:
                kinds[turn.kind] += 1
            if turn.kind is TurnKind.AGENT:
                agent_turns[customer] += 1
                if turn.phase is TurnPhase.COMMITTED:
                    last_agent[customer] = (turn.from_seq, turn.to_seq)
        for row in await h.store.outbox.for_session(session.tenant, session.session_id):
            author = row.payload.get("author")
            if author == SYSTEM_AUTHOR and is_notice(row.turn_id):
                authors[(customer, SYSTEM_AUTHOR)] += 1
            elif author == OPERATOR_AUTHOR:
                authors[(customer, OPERATOR_AUTHOR)] += 1
    for kind, count in e.turn_kinds.items():
        if kinds[kind] != count:
            problems.append(f"committed {kind.value} turns: expected {count}, got {kinds[kind]}")
    for customer, count in e.agent_turns.items():
        if agent_turns[customer] != count:
            problems.append(
                f"agent turns of {customer}: expected {count}, got {agent_turns[customer]}"
            )
    for customer, seq in e.agent_answered_after.items():
        got_range = last_agent.get(customer)
        if got_range is None or got_range[0] < seq or got_range[1] <= seq:
            problems.append(
                f"last agent turn of {customer}: expected messages after {seq} only, got "
                f"{'none' if got_range is None else f'({got_range[0]}, {got_range[1]}]'}"
            )
    for label, author, expected in (
        ("notices", SYSTEM_AUTHOR, e.notices),
        ("operator replies", OPERATOR_AUTHOR, e.operator_replies),
    ):
        for customer, count in expected.items():
            queued = authors[(customer, author)]
            if queued != count:
                problems.append(f"{label} to {customer}: expected {count}, got {queued}")
    return problems
