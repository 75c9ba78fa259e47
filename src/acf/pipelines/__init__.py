"""Built-in pipelines. ``rules``: the scripted rules pipeline, deterministic, the default."""

from acf.pipelines.router import Route, route
from acf.pipelines.rules import RulesPipeline
from acf.pipelines.rules_load import check_tools, load_rules, parse_rules
from acf.pipelines.rules_model import RulesConfig

__all__ = [
    "Route",
    "RulesConfig",
    "RulesPipeline",
    "check_tools",
    "load_rules",
    "parse_rules",
    "route",
]
