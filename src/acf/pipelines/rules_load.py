"""Loading and checking a rules document: YAML in, a ``RulesConfig`` out, with errors that
name the source (the file), the dotted path of the field (and the rule) and what was
expected; and the check of the rules against the agent's tools."""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from acf.domain.errors import InvalidValue
from acf.domain.tools import ToolSpec
from acf.pipelines.rules_model import (
    RulesConfig,
)


def _rule_name(body: Any, loc: tuple[Any, ...]) -> str:
    if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
        return ""
    rules = body.get("rules") if isinstance(body, Mapping) else None
    if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], Mapping):
        name = rules[loc[1]].get("name")
        if isinstance(name, str):
            return f" (rule {name!r})"
    return ""


def parse_rules(body: Any, source: str) -> RulesConfig:
    """Validate a parsed rules document; errors name ``source``, the field path and what was
    expected, e.g. ``rules.yaml: rules.2.match.regex (rule 'refund'): invalid ...``."""
    if not isinstance(body, Mapping):
        raise InvalidValue(f"{source}: expected a mapping with rules, got {type(body).__name__}")
    try:
        return RulesConfig.model_validate(dict(body))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            path = ".".join(str(p) for p in loc)
            problems.append(f"{path}{_rule_name(body, loc)}: {message}" if path else message)
        raise InvalidValue(f"{source}: {'; '.join(problems)}") from None


def load_rules(path: Path) -> RulesConfig:
    """Read and validate the rules file at ``path``."""
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidValue(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InvalidValue(f"{path}{where}: invalid YAML: {exc}") from None
    return parse_rules(body, str(path))


def check_tools(config: RulesConfig, specs: Iterable[ToolSpec], source: str = "rules") -> None:
    """Check the rules against the agent's tools: every tool named is allowed, and a tool
    that requires confirmation is used only through ``confirm``."""
    by_name = {s.name: s for s in specs}
    problems = []
    for index, rule in enumerate(config.rules):
        where = f"rules.{index}"
        for part, tool in (("call", rule.call), ("confirm", rule.confirm)):
            if tool is None:
                continue
            spec = by_name.get(tool.tool)
            if spec is None:
                problems.append(
                    f"{where}.{part}.tool (rule {rule.name!r}): the agent has no tool "
                    f"{tool.tool!r}; expected one of {sorted(by_name)}"
                )
            elif part == "call" and spec.requires_confirmation:
                problems.append(
                    f"{where}.call.tool (rule {rule.name!r}): {tool.tool} requires "
                    "confirmation; use confirm instead of call"
                )
    if problems:
        raise InvalidValue(f"{source}: {'; '.join(problems)}")
