"""Every ```yaml snippet of the README and docs/ is valid YAML and, by its shape, valid for
what it shows, through acf's own loaders:

| the snippet's top level | checked as | by |
|---|---|---|
| `tools` alone | a tools file | `declared.parse` |
| `version` and `tenants` | a whole configuration file | `parse_config` |
| `tenants` alone | a part of one, merged into a minimal configuration | `parse_config` |
| a tenant's keys (`twilio:`, …) | a tenant's fragment, put in a minimal tenant | `parse_config` |
| `rules` (and the rules document's keys) | a rules file | `parse_rules` |
| `name` and `script` | a scenario file | `Scenario.model_validate` |
| `pipeline` and other agent fields | a base agent's file | `AgentFields.model_validate` |

A snippet of any other shape fails this test: give it one of these shapes (or teach the
test a new one, with its loader). Rules files a configuration names are written beside
it as a minimal valid rules file, and base agents' files as a minimal LLM agent: the
snippet's own fields are what is checked.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from acf.adapters.tools import declared
from acf.config.load import parse_config
from acf.config.model import AgentFields, TenantFields
from acf.pipelines.rules_load import parse_rules
from acf.pipelines.rules_model import RulesConfig
from acf.testing.scenarios import Scenario

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*$")
MIN_RULES: dict[str, Any] = {
    "rules": [{"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": "hello"}]
}
MIN_BASE: dict[str, Any] = {
    "pipeline": {"kind": "llm", "model": "m", "base_url": "http://127.0.0.1:11434/v1"}
}


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    """The line of its opening fence (1-based)."""
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets(path: Path) -> Iterator[Snippet]:
    """The ```yaml blocks of a Markdown file, dedented by their fence's indentation (a
    block inside a list item is indented)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, body = len(opening["indent"]), []
        start, index = index, index + 1
        while index < len(lines) and not FENCE.match(lines[index]):
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        index += 1  # the closing fence
        if opening["lang"] == "yaml":
            yield Snippet(path, start + 1, "\n".join(body) + "\n")


ALL = [snippet for path in DOCS for snippet in snippets(path)]


def minimal_config() -> dict[str, Any]:
    agent = {"pipeline": {"kind": "rules", "rules": MIN_RULES}}
    return {"version": 1, "tenants": {"acme": {"agents": {"support": agent}}}}


def merged(base: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """``part`` over ``base``, mappings merged key by key."""
    out = dict(base)
    for key, value in part.items():
        below = out.get(key)
        both = isinstance(below, dict) and isinstance(value, dict)
        out[key] = merged(below, value) if both else value  # type: ignore[arg-type]
    return out


def check_config(body: dict[str, Any], source: str, tmp: Path) -> None:
    for named in (body.get("bases") or {}).values():
        if isinstance(named, str) and not Path(named).is_absolute():
            (tmp / named).parent.mkdir(parents=True, exist_ok=True)
            (tmp / named).write_text(yaml.safe_dump(MIN_BASE), encoding="utf-8")
    for tenant in body.get("tenants", {}).values():
        for agent in (tenant or {}).get("agents", {}).values():
            named = ((agent or {}).get("pipeline") or {}).get("rules_file")
            if isinstance(named, str) and not Path(named).is_absolute():
                (tmp / named).parent.mkdir(parents=True, exist_ok=True)
                (tmp / named).write_text(yaml.safe_dump(MIN_RULES), encoding="utf-8")
    parse_config(body, source, tmp)


def kind_of(body: Any) -> str | None:
    """What a snippet shows, from its top-level keys (the table in the docstring)."""
    if not isinstance(body, dict) or not body:
        return None
    keys = set(body)
    if keys == {"tools"}:  # a tenant's key too, but shown as a tools file
        return "tools file"
    if {"version", "tenants"} <= keys:
        return "configuration"
    if keys == {"tenants"}:
        return "part of a configuration"
    if keys <= set(TenantFields.model_fields):
        return "tenant fragment"
    if "rules" in keys and keys <= set(RulesConfig.model_fields):
        return "rules file"
    if {"name", "script"} <= keys:
        return "scenario"
    if "pipeline" in keys and keys <= set(AgentFields.model_fields):
        return "base agent"
    return None


def checker(kind: str) -> Callable[[dict[str, Any], str, Path], object]:
    checks: dict[str, Callable[[dict[str, Any], str, Path], object]] = {
        "configuration": check_config,
        "part of a configuration": lambda body, source, tmp: check_config(
            merged(minimal_config(), body), source, tmp
        ),
        "tenant fragment": lambda body, source, tmp: check_config(
            merged(minimal_config(), {"tenants": {"acme": body}}), source, tmp
        ),
        "rules file": lambda body, source, _tmp: parse_rules(body, source),
        "tools file": lambda body, source, _tmp: declared.parse(body, source),
        "scenario": lambda body, _source, _tmp: Scenario.model_validate(body),
        "base agent": lambda body, _source, _tmp: AgentFields.model_validate(body),
    }
    return checks[kind]


def test_the_docs_have_yaml_snippets_of_every_kind() -> None:
    """So that the check below cannot pass by finding nothing."""
    kinds = {kind_of(yaml.safe_load(s.text)) for s in ALL if _loads(s)}
    assert len(ALL) >= 8, [s.where for s in ALL]
    assert kinds >= {"configuration", "tenant fragment", "rules file", "tools file", "scenario"}


def _loads(snippet: Snippet) -> bool:
    try:
        yaml.safe_load(snippet.text)
    except yaml.YAMLError:
        return False
    return True


@pytest.mark.parametrize("snippet", ALL, ids=lambda s: s.where)
def test_every_yaml_snippet_loads_and_is_valid_for_what_it_shows(
    snippet: Snippet, tmp_path: Path
) -> None:
    try:
        body = yaml.safe_load(snippet.text)
    except yaml.YAMLError as exc:
        pytest.fail(f"{snippet.where}: not valid YAML: {exc}")
    kind = kind_of(body)
    assert kind is not None, (
        f"{snippet.where}: a snippet of no known shape (top level {sorted(body or [])}); "
        "see this test's docstring"
    )
    checker(kind)(body, snippet.where, tmp_path)
