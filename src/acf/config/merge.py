"""The merge of configuration layers (DESIGN §17), on the YAML mappings as written, before
they are validated: pure, with a merge log.

Rules (docs/configuration.md, "Layers and provenance"):

- Layers apply in order acf defaults → base → tenant → agent → scenario → step → runtime
  override; each later (more specific) layer wins.
- Mappings merge key by key; scalars and lists are replaced whole, except a mapping whose
  ``kind`` differs from the one below (a pipeline of another kind), which replaces it whole.
- ``tools`` (an allowlist) only narrows: a layer naming a tool the nearest layer below that
  set ``tools`` did not allow is an error naming the tools. The same holds for each
  ``scenarios.X.tools`` and ``scenarios.X.steps.Y.tools``, against the value a layer below
  set for that same key (an overlay cannot widen a base scenario's or step's allowlist).
- Every value set records who set it (``Origin``: layer, source, value) under its dotted
  key; a value set by a layer and set differently by a later one is a ``Conflict`` (listed,
  the later layer winning).
"""

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acf.config.errors import ConfigError

LAYERS = ("default", "base", "tenant", "agent", "scenario", "step", "override")
"""The layers, least specific first."""


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    """One of ``LAYERS``."""
    source: str
    """Where it is written: ``bases/support.yaml``, ``acf.yaml: tenants.demo.agents.support``."""
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Origin:
    """Who set one value: its layer and source, and the value it set."""

    layer: str
    source: str
    value: Any

    def as_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "source": self.source, "value": self.value}


@dataclass(frozen=True, slots=True)
class Conflict:
    """``key`` set by ``below`` and set differently by ``above``, which wins."""

    key: str
    below: Origin
    above: Origin

    def __str__(self) -> str:
        return (
            f"{self.key}: {self.below.layer} ({self.below.source}) sets {self.below.value!r}, "
            f"{self.above.layer} ({self.above.source}) sets {self.above.value!r}; "
            f"{self.above.layer} wins"
        )


@dataclass(frozen=True, slots=True)
class Merged:
    """The merged mapping, who set each of its values, and the conflicts on the way."""

    body: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Origin] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """The leaves of ``value`` by dotted key: mappings are walked (an empty one is a leaf),
    anything else (lists included) is a leaf."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.removesuffix("."): value} if prefix else {}


def merge_layers(layers: Sequence[Layer], start: Merged | None = None) -> Merged:
    """``layers`` merged in order over ``start`` (nothing by default). Raises
    ``ConfigError`` when a layer's ``tools`` (top-level, a scenario's or a step's) widen the
    allowlist a layer below set for the same key."""
    body = copy.deepcopy(start.body) if start else {}
    log = dict(start.log) if start else {}
    conflicts = list(start.conflicts) if start else []
    for layer in layers:
        _check_narrows(layer, log)
        body = _merge(body, layer.body, "", layer, log, conflicts)
    return Merged(body, log, tuple(conflicts))


def _allowlists(body: Mapping[str, Any]) -> dict[str, Any]:
    """The allowlists ``body`` sets, by dotted key: ``tools``, ``scenarios.X.tools`` and
    ``scenarios.X.steps.Y.tools``."""
    out = {"tools": body["tools"]} if "tools" in body else {}
    scenarios = body.get("scenarios")
    if not isinstance(scenarios, Mapping):
        return out
    for name, scenario in scenarios.items():
        if not isinstance(scenario, Mapping):
            continue
        if "tools" in scenario:
            out[f"scenarios.{name}.tools"] = scenario["tools"]
        steps = scenario.get("steps")
        if not isinstance(steps, Mapping):
            continue
        for step, step_body in steps.items():
            if isinstance(step_body, Mapping) and "tools" in step_body:
                out[f"scenarios.{name}.steps.{step}.tools"] = step_body["tools"]
    return out


def _check_narrows(layer: Layer, log: Mapping[str, Origin]) -> None:
    """Each allowlist ``layer`` sets narrows the one a layer below set for the same key."""
    for key, tools in _allowlists(layer.body).items():
        below = log.get(key)
        if not isinstance(tools, list) or below is None or not isinstance(below.value, list):
            continue
        wider = sorted({str(t) for t in tools} - {str(t) for t in below.value})
        if wider:
            what = "tools" if key == "tools" else f"{key.removesuffix('.tools')}: tools"
            raise ConfigError(
                f"{layer.source}: {what} {wider} are not allowed by the {below.layer} layer "
                f"below ({below.source}), which allows {sorted(map(str, below.value))}: an "
                "allowlist may only narrow"
            )


def _kind_changed(below: Mapping[str, Any], above: Mapping[str, Any]) -> bool:
    return "kind" in below and "kind" in above and below["kind"] != above["kind"]


def _merge(
    below: dict[str, Any],
    above: Mapping[str, Any],
    prefix: str,
    layer: Layer,
    log: dict[str, Origin],
    conflicts: list[Conflict],
) -> dict[str, Any]:
    out = dict(below)
    for raw_key, value in above.items():
        key = str(raw_key)
        dotted = f"{prefix}{key}"
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, dict) and not _kind_changed(old, value):
            log.pop(dotted, None)  # an empty mapping below was a leaf
            if value:
                out[key] = _merge(old, value, dotted + ".", layer, log, conflicts)
            continue
        removed = {k: o for k, o in log.items() if k == dotted or k.startswith(dotted + ".")}
        for k in removed:
            del log[k]
        new = copy.deepcopy(value if not isinstance(value, Mapping) else dict(value))
        for leaf, leaf_value in flatten(new, dotted + ".").items():
            log[leaf] = Origin(layer.name, layer.source, leaf_value)
        if dotted in removed and dotted in log:
            if removed[dotted].value != new:
                conflicts.append(Conflict(dotted, removed[dotted], log[dotted]))
        elif removed:  # a mapping replaced whole (another kind), or a leaf by a mapping
            last = list(removed.values())[-1]
            below_origin = Origin(last.layer, last.source, old)
            conflicts.append(Conflict(dotted, below_origin, Origin(layer.name, layer.source, new)))
        out[key] = new
    return out
