from typing import Any

import pytest

from acf.domain.errors import StateContractError
from acf.domain.state import (
    CURRENT_SCHEMA_VERSION,
    apply_patch,
    combine_patches,
    initial_state,
    merge_patch,
    replacement_patch,
    upcast,
    validate,
)


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [  # RFC 7396 appendix A, the cases that matter here
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_initial_state_is_valid_and_current() -> None:
    state = initial_state()
    assert state["schema_version"] == CURRENT_SCHEMA_VERSION
    assert validate(state) == state


def test_upcast_v1_flat_state() -> None:
    v1 = {"version": 1, "lane": "commerce", "sticky_until_ms": 99, "slots": {"o": 1}, "cart": [2]}
    assert upcast(v1) == {
        "schema_version": 2,
        "meta": {"lane": "commerce", "sticky_until_ms": 99},
        "slots": {"o": 1},
        "data": {"cart": [2]},
    }


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"slots": {}}, "no integer schema_version"),
        ({"schema_version": 9}, "newer than this acf"),
        ({"schema_version": 0}, "no upcaster from state schema_version 0"),
        ({"schema_version": 2, "extra": 1}, "extra: Extra inputs"),
        ({"schema_version": 2, "meta": {"sticky_until_ms": 1}}, "lane is not"),
    ],
)
def test_invalid_states(state: dict[str, Any], message: str) -> None:
    with pytest.raises(StateContractError, match=message):
        upcast(state)


def test_patch_is_validated_and_cannot_change_the_version() -> None:
    state = initial_state()
    assert apply_patch(state, {"meta": {"lane": "info"}})["meta"]["lane"] == "info"
    with pytest.raises(StateContractError, match="schema_version"):
        apply_patch(state, {"schema_version": 3})
    with pytest.raises(StateContractError, match="slots"):
        apply_patch(state, {"slots": "not an object"})


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        (None, {"a": 1}, {"a": 1}),
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None, "a": 1}),
        ({"args": {"x": "1"}}, {"args": {"y": "2"}}, {"args": {"x": None, "y": "2"}}),
        ({"a": {"b": 1}}, {"a": 5}, {"a": 5}),
        ({"a": 5}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ],
)
def test_replacement_patch_turns_old_into_exactly_new(
    old: dict | None, new: dict, patch: dict
) -> None:
    assert replacement_patch(old, new) == patch
    assert merge_patch(old or {}, replacement_patch(old, new)) == new


@pytest.mark.parametrize(
    ("first", "second", "combined"),
    [
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
        ({"a": {"x": 1}}, {"a": {"y": None}}, {"a": {"x": 1, "y": None}}),  # deletion kept
        ({"a": 1}, {"a": None}, {"a": None}),
        ({"a": None}, {"a": {"x": 1}}, {"a": {"x": 1}}),
    ],
)
def test_combine_patches_keeps_deletions(first: dict, second: dict, combined: dict) -> None:
    assert combine_patches(first, second) == combined
    state = {"a": {"x": 0, "y": 0}, "b": 0}
    if first.get("a") is not None or "a" not in first:  # the documented exception aside
        assert merge_patch(merge_patch(state, first), second) == merge_patch(state, combined)
