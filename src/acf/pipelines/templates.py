"""Reply and argument templates of the rules pipeline. Pure.

A template is text with slots: ``{order_id}`` (a regex capture), ``{state.slots.order_id}``
and ``{result.status}`` (a dotted path into a mapping; a number picks a list item),
``{name|default}`` (the default when the value is missing), ``{{`` and ``}}`` for literal
braces. A slot whose value is missing (absent, or ``None``) renders its default, or nothing.
A template that is exactly one slot (``"{order_id}"``) keeps the value's JSON type when it
fills a tool argument or a state patch (``render_value``).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*$")


@dataclass(frozen=True, slots=True)
class Slot:
    path: tuple[str, ...]
    default: str | None = None

    @property
    def root(self) -> str:
        return self.path[0]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


class TemplateError(ValueError):
    """The template is malformed (an unmatched brace, a bad slot name)."""


def _pieces(template: str) -> list[str | Slot]:
    pieces: list[str | Slot] = []
    at = 0
    for token in _TOKEN.finditer(template):
        if token.start() > at:
            pieces.append(template[at : token.start()])
        at = token.end()
        text = token.group(0)
        if text in ("{{", "}}"):
            pieces.append(text[0])
            continue
        if text in ("{", "}"):
            raise TemplateError(f"unmatched {text!r} (write {text * 2} for a literal brace)")
        name, bar, default = (token.group(1) or "").partition("|")
        name = name.strip()
        if not _PATH.match(name):
            raise TemplateError(f"bad slot {{{token.group(1)}}}: expected a name like order_id")
        pieces.append(Slot(tuple(name.split(".")), default if bar else None))
    if at < len(template):
        pieces.append(template[at:])
    return pieces


def slots(template: str) -> list[Slot]:
    """The slots of ``template``; raises ``TemplateError`` if it is malformed."""
    return [p for p in _pieces(template) if isinstance(p, Slot)]


def lookup(values: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path``, or ``None`` when any step is missing."""
    current: Any = values
    for step in path:
        if isinstance(current, Mapping):
            current = current.get(step)
        elif isinstance(current, list | tuple) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return None
        if current is None:
            return None
    return current


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``template``; a missing value renders its default, or nothing."""
    out: list[str] = []
    for piece in _pieces(template):
        if isinstance(piece, str):
            out.append(piece)
            continue
        value = lookup(values, piece.path)
        out.append((piece.default or "") if value is None else _text(value))
    return "".join(out)


def render_value(value: Any, values: Mapping[str, Any]) -> Any:
    """Fill every template inside ``value`` (a JSON value: strings are templates)."""
    if isinstance(value, str):
        pieces = _pieces(value)
        if len(pieces) == 1 and isinstance(pieces[0], Slot):
            found = lookup(values, pieces[0].path)
            return pieces[0].default if found is None else found
        return render(value, values)
    if isinstance(value, Mapping):
        return {k: render_value(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, values) for v in value]
    return value


def strings(value: Any) -> list[str]:
    """Every string (template) inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def missing(
    templates: Sequence[str], values: Mapping[str, Any], skip: frozenset[str] = frozenset()
) -> list[str]:
    """The slots without a default (and not rooted in ``skip``) the values cannot fill."""
    return [
        s.dotted
        for t in templates
        for s in slots(t)
        if s.root not in skip and s.default is None and lookup(values, s.path) is None
    ]
