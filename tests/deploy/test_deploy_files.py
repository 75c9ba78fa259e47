"""The monitoring files shipped in ``deploy/`` (seed 004 Story 8): the Grafana dashboard
and the Prometheus alert rules load, have the structure their tools expect, and query only
metrics and labels that acf's ``/metrics`` exposition really has once the agent service,
the router and the dead letters have fed it.

Where Debian's ``promtool`` is on the PATH (package ``prometheus``), the rules also pass
``promtool check rules``, the dashboard's queries parse as PromQL, and ``promtool test
rules`` shows the alerts fire on the series that should fire them and only those.
"""

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from acf.domain.events import EventKind, FabricEvent
from acf.observability import FabricMetrics
from tests.unit.test_metrics import ev

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "acf-agents.json"
ALERTS = ROOT / "deploy" / "prometheus" / "acf-alerts.yml"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
METRIC = re.compile(r"\bacf_[a-z0-9_]+")
SELECTOR = re.compile(r"\b(acf_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$tenant": ".*",
    "$agent": ".*",
    "$agent_routes": "agent.*",
}
PROMTOOL = shutil.which("promtool") or shutil.which(
    "promtool", path=str(Path(sys.executable).parent)
)
"""On the PATH, or beside the interpreter (``make promtool`` puts Debian's in ``.venv/bin``)."""
UNIT_TESTS = """
rule_files: [{rules}]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'acf_agent_service_up{{endpoint="http://a:1", instance="acf:8000"}}'
        values: '1 1 0x8'
      - series: 'acf_agent_service_circuit_state{{endpoint="http://a:1", instance="acf:8000"}}'
        values: '0x10'
      - series: 'acf_agent_service_up{{endpoint="http://b:1", instance="acf:8000"}}'
        values: '1x10'
      - series: 'acf_agent_service_circuit_state{{endpoint="http://b:1", instance="acf:8000"}}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 45s
        alertname: AgentServiceUnavailable
        exp_alerts: []
      - eval_time: 2m
        alertname: AgentServiceUnavailable
        exp_alerts:
          - exp_labels: {{severity: critical, endpoint: "http://a:1", instance: "acf:8000"}}
  - interval: 1m
    input_series:
      - series: 'acf_agent_service_requests_total{{tenant="t1", agent="a", outcome="complete"}}'
        values: '0+100x20'
      - series: 'acf_agent_service_errors_total{{tenant="t1", agent="a", kind="unavailable"}}'
        values: '0+10x20'
      - series: 'acf_agent_service_requests_total{{tenant="t2", agent="a", outcome="complete"}}'
        values: '0+100x20'
      - series: 'acf_agent_service_errors_total{{tenant="t2", agent="a", kind="unavailable"}}'
        values: '0+1x20'
      - series: 'acf_agent_service_first_chunk_seconds_bucket{{tenant="t1", agent="a", le="2.0"}}'
        values: '0+10x20'
      - series: 'acf_agent_service_first_chunk_seconds_bucket{{tenant="t1", agent="a", le="10.0"}}'
        values: '0+100x20'
      - series: 'acf_agent_service_first_chunk_seconds_bucket{{tenant="t1", agent="a", le="+Inf"}}'
        values: '0+100x20'
      - series: 'acf_agent_service_first_chunk_seconds_bucket{{tenant="t2", agent="a", le="2.0"}}'
        values: '0+100x20'
      - series: 'acf_agent_service_first_chunk_seconds_bucket{{tenant="t2", agent="a", le="10.0"}}'
        values: '0+100x20'
      - series: 'acf_agent_service_first_chunk_seconds_bucket{{tenant="t2", agent="a", le="+Inf"}}'
        values: '0+100x20'
    alert_rule_test:
      - eval_time: 15m
        alertname: AgentServiceErrorRate
        exp_alerts:
          - exp_labels: {{severity: warning, tenant: t1, agent: a}}
      - eval_time: 15m
        alertname: AgentServiceSlowFirstChunk
        exp_alerts:
          - exp_labels: {{severity: warning, tenant: t1, agent: a}}
"""
"""``promtool test rules``: AgentServiceUnavailable after a minute down (not before, not
for the endpoint that stays up); AgentServiceErrorRate for the tenant at 10 % errors, not
for the one at 1 %; AgentServiceSlowFirstChunk for the tenant whose first chunks mostly
take 2-10 s, not for the one whose all come within 2 s."""

Exposition = dict[str, set[str]]
"""Each sample name of ``/metrics`` -> the label names it carries."""


def progress(name: str, **data: Any) -> FabricEvent:
    return ev(EventKind.TURN_PROGRESS, name=name, **data)


@pytest.fixture(scope="module")
def exposition() -> Exposition:
    """acf's exposition after one of each event the agent metrics count."""
    metrics = FabricMetrics()
    offsets = [["THOUGHT", 100], ["TOOL_START", 200], ["ANSWER_CHUNK", 800], ["COMPLETE", 900]]
    agent = {"agent": "concierge", "profile": "orders", "endpoint": "http://127.0.0.1:9"}
    metrics.observe(
        [
            progress(
                "agent_service.execution",
                **agent,
                outcome="complete",
                attempts=2,
                resumes=1,
                duration_ms=900,
                first_event_ms=100,
                first_chunk_ms=800,
                event_offsets_ms=offsets,
            ),
            progress(
                "agent_service.execution",
                **agent,
                outcome="failed",
                attempts=3,
                resumes=0,
                duration_ms=7000,
                error_kind="unavailable",
            ),
            progress("agent_service.circuit", endpoint="http://127.0.0.1:9", state="open"),
            progress("routing.decision", agent="concierge", route="agent", reason="command",
                     decision_us=40),
            ev(EventKind.DEAD_LETTER_RECORDED),
        ]
    )  # fmt: skip
    metrics.set_agent_service_health("http://127.0.0.1:9", up=False, circuit="open")
    body, _ = metrics.render()
    found: Exposition = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def promtool(*args: str) -> None:
    """Run Debian's promtool (only called where it is installed); it must succeed."""
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def alert_rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return loaded


def rules() -> list[dict[str, Any]]:
    return [rule for group in alert_rules()["groups"] for rule in group["rules"]]


def panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard, Grafana's variables filled in."""
    queries = [t["expr"] for p in panels() for t in p.get("targets", [])]
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            inner = query["query"] if isinstance(query, dict) else query
            queries.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", inner))
    filled = []
    for query in queries:
        for name, value in GRAFANA_VARIABLES.items():
            query = query.replace(name, value)
        filled.append(query)
    return filled


def check_names_and_labels(expr: str, exposition: Exposition) -> None:
    """Every metric the query names is exposed, with every label it matches or groups by."""
    names = METRIC.findall(expr)
    assert names, f"no acf metric in {expr!r}"
    unknown = [n for n in names if n not in exposition]
    assert not unknown, f"{unknown} not in acf's /metrics (query: {expr!r})"
    for name, matchers in SELECTOR.findall(expr):
        labels = set(MATCHER.findall(matchers))
        assert labels <= exposition[name], f"{name} has no {labels - exposition[name]}"
    for grouping in GROUPING.finditer(expr):
        labels = {label.strip() for label in grouping.group(1).split(",") if label.strip()}
        inner = METRIC.search(expr, grouping.end())
        assert inner, f"nothing grouped by {labels} in {expr!r}"
        carried = exposition[inner.group()]
        assert labels <= carried, f"{inner.group()} has no {labels - carried} ({expr!r})"


# -- Prometheus ---------------------------------------------------------------------


def test_the_alert_rules_follow_prometheus_rule_schema() -> None:
    body = alert_rules()
    assert set(body) == {"groups"}
    names = [group["name"] for group in body["groups"]]
    assert len(names) == len(set(names)) and all(names)
    alerts = []
    for group in body["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert DURATION.match(rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert {"summary", "description"} <= set(rule["annotations"])
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))
    if PROMTOOL is not None:
        promtool("check", "rules", str(ALERTS))


def test_the_alerts_the_seed_asks_for_are_there(tmp_path: Path) -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    unavailable = by_name["AgentServiceUnavailable"]
    assert unavailable["for"] == "1m"
    assert "acf_agent_service_up == 0" in unavailable["expr"]
    assert "acf_agent_service_circuit_state == 2" in unavailable["expr"]
    errors = by_name["AgentServiceErrorRate"]
    assert errors["for"] == "5m"
    assert "acf_agent_service_errors_total[5m]" in errors["expr"]
    assert "acf_agent_service_requests_total[5m]" in errors["expr"]
    assert errors["expr"].rstrip().endswith("> 0.05")
    slow = by_name["AgentServiceSlowFirstChunk"]
    assert "histogram_quantile(0.95" in slow["expr"]
    assert "acf_agent_service_first_chunk_seconds_bucket" in slow["expr"]
    assert slow["expr"].rstrip().endswith("> 5")
    if PROMTOOL is not None:  # they fire on the series that should fire them, only those
        # promtool compares annotations too: the rules without them (their templates are
        # checked by ``check rules``) keep the expected alerts short.
        body = alert_rules()
        for rule in (r for group in body["groups"] for r in group["rules"]):
            rule["annotations"] = {}
        bare = tmp_path / "alerts.yml"
        bare.write_text(yaml.safe_dump(body), encoding="utf-8")
        tests = tmp_path / "alerts-test.yml"
        tests.write_text(UNIT_TESTS.format(rules=json.dumps(str(bare))), encoding="utf-8")
        promtool("test", "rules", str(tests))


def test_every_alert_queries_metrics_and_labels_acf_exposes(exposition: Exposition) -> None:
    for rule in rules():
        check_names_and_labels(rule["expr"], exposition)
        templated = " ".join(rule["annotations"].values()) + " ".join(rule["labels"].values())
        for label in re.findall(r"\$labels\.(\w+)", templated):
            assert label == "instance" or any(
                label in exposition[name] for name in METRIC.findall(rule["expr"])
            ), f"{rule['alert']} names $labels.{label}, which its query does not carry"


# -- Grafana ------------------------------------------------------------------------


def test_the_dashboard_has_grafana_structure() -> None:
    body = dashboard()
    assert body["schemaVersion"] >= 36
    assert body["uid"] and body["title"]
    variables = {v["name"] for v in body["templating"]["list"]}
    assert {"datasource", "tenant", "agent", "agent_routes"} <= variables
    ids = []
    for panel in panels():
        ids.append(panel["id"])
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["description"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"]
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
            assert used <= variables, f"{panel['title']}: undefined {used - variables}"
    assert len(ids) == len(set(ids))


def test_the_dashboard_shows_what_the_seed_asks_for() -> None:
    queries = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels() if
               p["type"] != "row"}  # fmt: skip
    by_type = queries["Latency by event type"]
    rates = "(rate(acf_agent_service_event_seconds_bucket"
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le, type) {rates}" in by_type
    assert "acf_agent_service_first_chunk_seconds_bucket" in queries["Time to first chunk"]
    assert "acf_routing_decision_seconds_bucket" in queries["Routing decision latency"]
    assert "by (outcome)" in queries["Requests by outcome"]
    assert "acf_agent_service_errors_total" in queries["Error rate"]
    assert 'route=~"$agent_routes"' in queries["Delegation rate"]
    assert "acf_agent_service_circuit_state" in queries["Circuit state"]
    assert "acf_dead_letters_total" in queries["Dead letters"]
    assert "acf_agent_service_up" in queries["Agent service up"]


def test_every_dashboard_query_uses_metrics_and_labels_acf_exposes(
    exposition: Exposition, tmp_path: Path
) -> None:
    for query in dashboard_queries():
        check_names_and_labels(query, exposition)
    if PROMTOOL is not None:  # the queries as recording rules: promtool parses each one
        recorded = [
            {"record": f"acf:dashboard_query_{n}", "expr": query}
            for n, query in enumerate(dashboard_queries())
        ]
        queries = tmp_path / "dashboard-queries.yml"
        body = {"groups": [{"name": "dashboard", "rules": recorded}]}
        queries.write_text(yaml.safe_dump(body), encoding="utf-8")
        promtool("check", "rules", str(queries))
