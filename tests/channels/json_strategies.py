"""Hypothesis strategies for the fuzz tests of signed webhooks: any JSON value, and bodies
in a provider's documented shape with a few places made wrong, so the examples reach deep
into a body instead of failing at its first field."""

from typing import Any

from hypothesis import strategies as st

EDGE_STRINGS = (
    "",
    " ",
    "abc",
    "-5",
    "0",
    "1.5",
    "9223372036854775808",
    "99999999999999999999",
    "16505551234",
    "a\x00b",
    "\ud800",  # a lone surrogate: valid JSON (escaped), not storable text
    "x" * 300,
)
EDGE_INTS = (0, -1, -5, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**70)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(EDGE_STRINGS),
)

json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=8,
)
"""Any JSON value (nested lists and objects of any scalar)."""


def shaped(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """An object in a provider's documented shape; the ``optional`` fields may be missing."""
    return st.fixed_dictionaries(required, optional=optional)


def _places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a JSON value, depth first."""
    found: list[tuple[Any, Any]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        found.append((value, key))
        found += _places(child)
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A documented body with up to three places replaced by any JSON value or removed:
    wrong types, wrong shapes and missing fields deep inside an otherwise right body."""
    body = draw(valid)
    for _ in range(draw(st.integers(0, 3))):
        places = _places(body)
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        if draw(st.booleans()):
            container[key] = draw(json_values)
        else:
            del container[key]
    return body
