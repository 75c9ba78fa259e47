"""Tool specs, idempotency keys and the ledger's recovery rule (DESIGN §8)."""

import pytest

from acf.domain.errors import InvalidValue
from acf.domain.tools import (
    BUSINESS_TTL_MS,
    DedupeScope,
    LedgerStatus,
    Next,
    SideEffectPolicy,
    ToolSpec,
    idempotency_key,
    next_step,
)

P = SideEffectPolicy
S = LedgerStatus
REFUND = ToolSpec("refund", P.IRREVERSIBLE, business_key="order-{order_id}")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (REFUND, "t1:refund:order-42"),
        (ToolSpec("lookup", P.PURE, business_key="{order_id}"), "t1:lookup:42:group:g1"),
        (
            ToolSpec(
                "note", P.IDEMPOTENT, business_key="{order_id}", dedupe_scope=DedupeScope.SESSION
            ),
            "t1:note:42:session:s1",
        ),
        (
            ToolSpec("refund2", P.IRREVERSIBLE, business_key="a:{order_id}"),
            "t1:refund2:a%3A42",  # a ':' inside a part cannot collide with the separators
        ),
    ],
)
def test_idempotency_keys_by_scope(spec: ToolSpec, expected: str) -> None:
    assert idempotency_key(spec, "t1", "s1", "g1", {"order_id": 42, "amount": 5}) == expected


def test_without_a_template_the_key_covers_all_arguments_in_any_order() -> None:
    spec = ToolSpec("charge", P.IRREVERSIBLE)
    a = idempotency_key(spec, "t1", "s1", "g1", {"x": 1, "y": 2})
    assert a == idempotency_key(spec, "t1", "s2", "g2", {"y": 2, "x": 1})
    assert a != idempotency_key(spec, "t1", "s1", "g1", {"x": 1, "y": 3})


def test_defaults() -> None:
    assert REFUND.scope is DedupeScope.BUSINESS and REFUND.ttl_ms == BUSINESS_TTL_MS
    idem = ToolSpec("send", P.IDEMPOTENT)
    assert idem.scope is DedupeScope.GROUP and idem.ttl_ms is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name", "policy": P.PURE}, "tool name"),
        ({"name": "undo", "policy": P.COMPENSATABLE}, "needs a compensation"),
        ({"name": "x", "policy": P.PURE, "timeout_ms": 0}, "timeout_ms"),
        ({"name": "x", "policy": P.PURE, "business_key": "static"}, "at least one argument"),
        ({"name": "x", "policy": P.PURE, "business_key": "{oops"}, "business_key"),
    ],
)
def test_bad_specs_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        ToolSpec(**kwargs)  # type: ignore[arg-type]


def test_a_missing_key_argument_is_named() -> None:
    with pytest.raises(InvalidValue, match="needs argument 'order_id'"):
        idempotency_key(REFUND, "t1", "s1", "g1", {"amount": 5})


@pytest.mark.parametrize(
    ("policy", "status", "expected"),
    [
        (P.IRREVERSIBLE, None, Next.RUN),
        (P.IRREVERSIBLE, S.SUCCEEDED, Next.RETURN_RECORDED),
        (P.IRREVERSIBLE, S.FAILED, Next.RUN),  # definitely did not happen
        (P.IRREVERSIBLE, S.STARTED, Next.IN_DOUBT),  # never re-run blindly
        (P.COMPENSATABLE, S.STARTED, Next.IN_DOUBT),
        (P.IDEMPOTENT, S.STARTED, Next.RUN),  # same key: the backend deduplicates
        (P.PURE, S.STARTED, Next.RUN),
        (P.PURE, S.IN_DOUBT, Next.IN_DOUBT),
        (P.COMPENSATABLE, S.COMPENSATED, Next.RUN),  # undone: may run again
    ],
)
def test_next_step_after_an_earlier_entry(
    policy: SideEffectPolicy, status: LedgerStatus | None, expected: Next
) -> None:
    assert next_step(policy, status) is expected
