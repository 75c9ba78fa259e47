from typing import Any

import pytest

from acf.domain.errors import StateContractError
from acf.domain.state import (
    CURRENT_SCHEMA_VERSION,
    apply_patch,
    initial_state,
    merge_patch,
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
