"""The demo: agent ``support`` of tenant ``demo``, the scripted rules pipeline with its
rules (``support_rules.yaml``, package data) over an in-process commerce backend, which
the demo offers to configurations as the built-in tools ``commerce``."""

from importlib.resources import files
from pathlib import Path

from acf.bootstrap.builtin_tools import BuiltinTools
from acf.demo.commerce import COMMERCE, CommerceBackend, commerce_factory, commerce_tools
from acf.pipelines.rules_load import load_rules
from acf.pipelines.rules_model import RulesConfig

DEMO_TENANT = "demo"
DEMO_AGENT = "support"
DEMO_RULES_PATH = Path(str(files("acf.demo") / "support_rules.yaml"))
"""The demo agent's rules file, shipped inside the package."""


def demo_rules() -> RulesConfig:
    """The demo agent's rules, loaded and checked."""
    return load_rules(DEMO_RULES_PATH)


def register_tools(tools: BuiltinTools) -> None:
    """Offer the demo's built-in tools (``builtin: commerce``) to the configurations."""
    tools.register(COMMERCE, commerce_factory)


def demo_tools() -> BuiltinTools:
    """A registry holding the demo's built-in tools."""
    tools = BuiltinTools()
    register_tools(tools)
    return tools


__all__ = [
    "DEMO_AGENT",
    "DEMO_RULES_PATH",
    "DEMO_TENANT",
    "CommerceBackend",
    "commerce_tools",
    "demo_rules",
    "demo_tools",
    "register_tools",
]
