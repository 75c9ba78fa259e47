"""The grid of a policy sweep (``acf.replay.sweep``): which ``ChannelPolicy`` variants of
acf's strategy to replay.

A grid file (YAML) maps policy fields to lists of values (every combination is a variant),
or is a list of such mappings (their variants together). Each point is applied over the
channel's default policy with ``dataclasses.replace``; a point the policy refuses
(``min_window_ms`` above ``window_ms``, say) is skipped and listed with why. Only the
policy's int and bool fields may vary (``SWEEP_FIELDS``).
"""

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acf.domain.errors import InvalidValue
from acf.domain.policy import ChannelPolicy

ACF = "acf adaptive"
"""The name of acf's strategy (``acf.replay.simulate.default_strategies``): its default
policy's variant."""
SWEEP_FIELDS = {f.name: f.type for f in dataclasses.fields(ChannelPolicy) if f.type in (int, bool)}
"""The policy fields a grid may vary, and their types."""

Params = tuple[tuple[str, int | bool], ...]
Grid = dict[str, list[int | bool]]


class GridError(ValueError):
    """A grid file that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    params: Params
    """The grid's values (empty for the default policy)."""
    policy: ChannelPolicy


def load_grid(path: Path) -> list[Grid]:
    """The grids of a YAML file: one mapping of field to values, or a list of them."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GridError(f"{path}: {exc}") from None
    grids = loaded if isinstance(loaded, list) else [loaded]
    for grid in grids:
        if not isinstance(grid, dict) or not grid:
            raise GridError(f"{path}: expected a mapping of policy field to list of values")
        for field, values in grid.items():
            kind = SWEEP_FIELDS.get(field)
            if kind is None:
                raise GridError(
                    f"{path}: {field!r} is not a policy field a grid can vary; "
                    f"expected one of {', '.join(SWEEP_FIELDS)}"
                )
            if not isinstance(values, list) or not values:
                raise GridError(f"{path}: {field}: expected a non-empty list of values")
            for value in values:
                if type(value) is not kind:
                    raise GridError(f"{path}: {field}: {value!r} is not a {kind.__name__}")
    return grids


def variants(
    base: ChannelPolicy, grids: Sequence[Grid]
) -> tuple[list[Variant], list[tuple[Params, str]]]:
    """The default policy (named as acf's strategy), then each distinct valid point of the
    grids, in order; and the points the policy refused, with why."""
    found = [Variant(ACF, (), base)]
    seen = {base}
    skipped: list[tuple[Params, str]] = []
    for grid in grids:
        for values in itertools.product(*grid.values()):
            params = tuple(zip(grid, values, strict=True))
            try:
                changes: dict[str, Any] = dict(params)
                policy = dataclasses.replace(base, **changes)
            except InvalidValue as exc:
                skipped.append((params, str(exc)))
                continue
            if policy not in seen:
                seen.add(policy)
                found.append(Variant(f"v{len(found):02d}", params, policy))
    return found, skipped
