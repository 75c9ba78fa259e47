"""What the abuse firewall's text detectors match, and how: a message's first
``SCAN_CHARS`` characters with its whitespace runs as single spaces, searched for a
tenant's injection patterns with RE2 and for its banned terms as whole words.

A tenant writes the patterns (``firewall.injection.patterns``) and they run on every
message a customer sends, on the event loop: RE2 (``google-re2``) matches in time linear
in the text whatever the pattern, where Python's ``re`` can backtrack for seconds on a
short message (``(\\w+\\s?)+system prompt`` on 27 characters took 13 s). RE2 has no
look-around and no back-references; the configuration refuses a pattern it cannot compile,
and one that can match the empty string (it would match every message), naming it
(``pattern_problem``). Banned terms are literal words, escaped: ``re`` is linear on them.
"""

import functools
import re
from collections.abc import Sequence
from typing import Any, Protocol, cast

import re2

SCAN_CHARS = 4096
"""How much of a message the text detectors read: a longer one is judged by its start."""

_PROBES = ("", " ", "a", "a b", "1.")
"""Texts on which a pattern's match must never be empty (``pattern_problem``)."""


class _Match(Protocol):
    def start(self) -> int: ...

    def end(self) -> int: ...


class _Compiled(Protocol):
    def search(self, text: str) -> _Match | None: ...


def scanned(text: str | None) -> str:
    """The part of ``text`` the detectors match: its first ``SCAN_CHARS`` characters,
    whitespace runs as one space (so ``"shut   up"`` is ``"shut up"``)."""
    if not text:
        return ""
    return " ".join(text[:SCAN_CHARS].split())


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is reported by the configuration
    return options


def _compile(pattern: str) -> _Compiled:
    """``pattern`` compiled by RE2, any case; raises ``re2.error``."""
    return cast(_Compiled, re2.compile(pattern, _options()))


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an injection pattern (None: it can): RE2 does not compile
    it, or it can match the empty string."""
    try:
        compiled = _compile(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        hint = ""
        if "perl operator" in str(reason) or "escape" in str(reason):
            hint = " (RE2 has no look-around and no back-references)"
        return f"is not a regular expression RE2 accepts: {reason}{hint}"
    for probe in _PROBES:
        found = compiled.search(probe)
        if found is not None and found.end() == found.start():
            return "matches the empty string, so it would match every message"
    return None


@functools.lru_cache(maxsize=256)
def _patterns(patterns: tuple[str, ...]) -> tuple[_Compiled, ...]:
    return tuple(_compile(p) for p in patterns)


def matches_pattern(patterns: Sequence[str], scanned_text: str) -> bool:
    """Whether one of ``patterns`` (any case) is found in ``scanned_text`` (``scanned``)."""
    if not scanned_text:
        return False
    return any(p.search(scanned_text) is not None for p in _patterns(tuple(patterns)))


@functools.lru_cache(maxsize=256)
def _terms(terms: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled = []
    for term in terms:
        words = term.split()
        if words:
            body = " ".join(re.escape(word) for word in words)
            compiled.append((term, re.compile(r"(?<!\w)" + body + r"(?!\w)", re.IGNORECASE)))
    return tuple(compiled)


def banned_term_in(terms: Sequence[str], scanned_text: str) -> str | None:
    """The first of ``terms`` (whole words or phrases, any case) in ``scanned_text``
    (``scanned``), or None."""
    if not scanned_text:
        return None
    for term, pattern in _terms(tuple(terms)):
        if pattern.search(scanned_text):
            return term
    return None
