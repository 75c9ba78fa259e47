"""The difference between two resolved configurations (``acf config diff A B``), per dotted
key: what was added, removed or changed. Pure."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acf.config.merge import flatten

MISSING: Any = None
"""``before`` of an added key and ``after`` of a removed one (see ``DiffRow.change``)."""


@dataclass(frozen=True, slots=True)
class DiffRow:
    key: str
    before: Any
    after: Any
    change: str
    """``added``, ``removed`` or ``changed``."""


def diff_resolved(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[DiffRow]:
    """The keys whose value differs from ``a`` to ``b``, sorted by key. Mappings are walked
    (``agents.support.settings.deadline_ms``); lists compare whole."""
    before, after = flatten(a), flatten(b)
    rows = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            rows.append(DiffRow(key, before[key], MISSING, "removed"))
        elif key not in before:
            rows.append(DiffRow(key, MISSING, after[key], "added"))
        elif before[key] != after[key] or type(before[key]) is not type(after[key]):
            rows.append(DiffRow(key, before[key], after[key], "changed"))
    return rows
