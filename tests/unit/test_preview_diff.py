"""The preview's diff (``acf.preview.diff``): alignment, summary and the regression gate."""

from typing import Any

import pytest

from acf.preview.diff import (
    Change,
    Kind,
    SessionDiff,
    SessionView,
    ToolCallView,
    diff_items,
    diff_views,
    gate_fails,
    summarise,
)

R = Kind.REPLIES


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (["a", "b"], ["a", "b"], []),
        ([], [], []),
        (["a", "b", "c"], ["a", "B", "c"], [Change(R, 1, "b", "B")]),
        (["a", "c"], ["a", "b", "c"], [Change(R, 1, None, "b")]),  # one insertion only
        (["a", "b", "c"], ["a", "c"], [Change(R, 1, "b", None)]),
        (["a"], [], [Change(R, 0, "a", None)]),
        ([], ["a"], [Change(R, 0, None, "a")]),
        (["a", "b"], ["x"], [Change(R, 0, "a", "x"), Change(R, 1, "b", None)]),
    ],
)
def test_items_align_on_equal_ones(
    before: list[str], after: list[str], expected: list[Change]
) -> None:
    assert diff_items(R, before, after) == expected


def test_tool_calls_compare_name_and_arguments_not_the_sandbox_flag() -> None:
    recorded = SessionView(tool_calls=(ToolCallView("lookup", {"id": "1", "x": 2}),))
    same = SessionView(tool_calls=(ToolCallView("lookup", {"x": 2, "id": "1"}, sandbox=True),))
    assert diff_views(recorded, same) == []
    other = SessionView(tool_calls=(ToolCallView("lookup", {"id": "2"}, sandbox=True),))
    (change,) = diff_views(recorded, other)
    assert change.kind is Kind.TOOL_CALLS
    assert change.to_json()["after"] == {"tool": "lookup", "args": {"id": "2"}, "sandbox": True}


def diff(*changes: Change, problems: tuple[str, ...] = (), sandbox: int = 0) -> SessionDiff:
    return SessionDiff("s", "a", "c", "web", 2, changes, sandbox, problems)


CASES: list[tuple[list[SessionDiff], dict[str, Any]]] = [
    ([], {"sessions": 0, "changed": 0, "unchanged": 0}),
    ([diff(), diff()], {"sessions": 2, "changed": 0, "unchanged": 2}),
    (
        [diff(Change(R, 0, "a", "b"), Change(R, 1, "c", None)), diff()],
        {"sessions": 2, "changed": 1, "unchanged": 1, "replies": 1, "reply_changes": 2},
    ),
    ([diff(problems=("not accepted",))], {"sessions": 1, "changed": 1, "unchanged": 0}),
]


@pytest.mark.parametrize(("diffs", "expected"), CASES)
def test_summary_counts_sessions_and_changes(
    diffs: list[SessionDiff], expected: dict[str, Any]
) -> None:
    s = summarise(diffs)
    assert (s.sessions, s.changed, s.unchanged) == (
        expected["sessions"],
        expected["changed"],
        expected["unchanged"],
    )
    assert s.sessions_changed_by_kind[Kind.REPLIES] == expected.get("replies", 0)
    assert s.changes_by_kind[Kind.REPLIES] == expected.get("reply_changes", 0)


@pytest.mark.parametrize(
    ("kinds", "failing"),
    [
        ([], []),
        ([Kind.TOOL_CALLS], []),
        ([Kind.REPLIES], [Kind.REPLIES]),
        ([Kind.OUTCOMES, Kind.REPLIES], [Kind.REPLIES]),
    ],
)
def test_fail_on_change_names_the_kinds_that_changed(
    kinds: list[Kind], failing: list[Kind]
) -> None:
    summary = summarise([diff(Change(R, 0, "a", "b")), diff()])
    assert gate_fails(summary, kinds) == failing
