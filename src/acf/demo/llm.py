"""The demo with an LLM for a brain: ``acf serve`` without ``--config`` and with
``ACF_LLM_BASE_URL`` set runs the demo agent as ``kind: llm`` over the same commerce tools.

The model is ``ACF_LLM_MODEL`` (default ``gpt-4o-mini``); the key is read from
``ACF_LLM_API_KEY``, else ``OPENAI_API_KEY``, as a secret reference (neither: an endpoint
without authentication, such as a local Ollama or vLLM).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from acf.config.load import LoadedConfig, parse_config
from acf.config.pipelines import LlmPipelineFields
from acf.demo import DEMO_AGENT, DEMO_TENANT

DEFAULT_MODEL = "gpt-4o-mini"
KEY_VARIABLES = ("ACF_LLM_API_KEY", "OPENAI_API_KEY")

SYSTEM_PROMPT = """\
You are the customer support agent of {tenant_display_name}, an online shop, talking to a \
customer on {channel}. Be brief and friendly. You can look up orders, open support tickets, \
refund orders and cancel subscriptions with your tools; order numbers are digits. Never say \
that something was done unless a tool reported it done. If the customer asks for something \
you cannot do, say so and offer a ticket."""

CLAIMS = {
    "refund_order": [r"\b(I|we) (have |'ve )?(refunded|issued (a|the|your) refund)"],
    "cancel_subscription": [r"\b(I|we) (have |'ve )?cancell?ed (your|the) subscription"],
    "create_ticket": [r"\b(I|we) (have |'ve )?(opened|created) (a|the|your) ticket"],
}
"""Replies that claim these actions go out only when the ledger shows them done."""


def api_key_reference(environ: Mapping[str, str]) -> str | None:
    """``${ACF_LLM_API_KEY}`` or ``${OPENAI_API_KEY}``: the first one set."""
    for name in KEY_VARIABLES:
        if environ.get(name):
            return "${" + name + "}"
    return None


def llm_pipeline(base_url: str, model: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The demo agent's ``pipeline`` section for an LLM at ``base_url``."""
    pipeline: dict[str, Any] = {
        "kind": "llm",
        "model": model or DEFAULT_MODEL,
        "base_url": base_url,
        "system_prompt": SYSTEM_PROMPT,
        "temperature": 0.2,
        "max_tokens": 400,
        "enforcement": {"claims": CLAIMS},
    }
    key = api_key_reference(environ)
    if key is not None:
        pipeline["api_key"] = key
    return pipeline


def llm_demo_config(
    demo_path: Path, base_url: str, model: str | None, environ: Mapping[str, str]
) -> LoadedConfig:
    """The bundled demo configuration (``demo_path``) with an LLM agent; raises
    ``ConfigError`` naming the setting when ``base_url`` is not a usable URL."""
    body = yaml.safe_load(demo_path.read_text("utf-8"))
    body["tenants"][DEMO_TENANT]["agents"][DEMO_AGENT]["pipeline"] = llm_pipeline(
        base_url, model, environ
    )
    source = f"{demo_path} with ACF_LLM_BASE_URL"
    return parse_config(body, source, demo_path.parent)


def brain(loaded: LoadedConfig) -> str:
    """What answers the demo's customers, in a few words."""
    pipeline = loaded.config.tenants[DEMO_TENANT].agents[DEMO_AGENT].pipeline
    if isinstance(pipeline, LlmPipelineFields):
        return f"an LLM: {pipeline.model} at {pipeline.base_url}"
    return "scripted rules (offline; set ACF_LLM_BASE_URL to use an LLM)"
