"""The demo: agent ``support`` of tenant ``demo``, the scripted rules pipeline with its
rules (``support_rules.yaml``, package data) over an in-process commerce backend."""

from importlib.resources import files
from pathlib import Path

from acf.demo.commerce import CommerceBackend, commerce_tools
from acf.pipelines.rules_load import load_rules
from acf.pipelines.rules_model import RulesConfig

DEMO_TENANT = "demo"
DEMO_AGENT = "support"
DEMO_RULES_PATH = Path(str(files("acf.demo") / "support_rules.yaml"))
"""The demo agent's rules file, shipped inside the package."""


def demo_rules() -> RulesConfig:
    """The demo agent's rules, loaded and checked."""
    return load_rules(DEMO_RULES_PATH)


__all__ = [
    "DEMO_AGENT",
    "DEMO_RULES_PATH",
    "DEMO_TENANT",
    "CommerceBackend",
    "commerce_tools",
    "demo_rules",
]
