"""The system message: the agent's prompt with its placeholders filled, what the model may
know about the conversation (the user context), the channel's limits, and the rolling
summary of older turns. Pure.

The user context (tenant, customer id, channel, locale) informs the replies only: tools
are authorised by the gateway's allowlist, never by anything the model read or wrote. The
message holds nothing that changes between two runs of the same turn (no clock), so a
retry or a recovery sends the same request and reuses its completion.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acf.domain.capabilities import ChannelCapabilities

DEFAULT_PROMPT = (
    "You are the customer support agent of {tenant_display_name}. Answer briefly and "
    "politely in the customer's language. Use your tools to look things up and to act; "
    "never say an action was done unless a tool result says so."
)
PLACEHOLDERS = ("tenant_display_name", "tenant", "agent", "channel", "locale", "customer_id")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_CONTEXT_LABELS = {
    "tenant": "Business",
    "customer_id": "Customer id",
    "channel": "Channel",
    "locale": "Locale",
}


@dataclass(frozen=True, slots=True)
class PromptSource:
    """The agent's prompt template (``None``: ``DEFAULT_PROMPT``) and the tenant's display
    name, as the configuration loaded them."""

    template: str | None = None
    tenant_display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    """Where this conversation happens."""

    tenant: str
    agent: str
    customer_id: str
    channel: str
    locale: str | None = None


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with the known ``{placeholders}`` filled; any other brace stays."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def placeholder_values(source: PromptSource, site: Site) -> dict[str, str]:
    return {
        "tenant_display_name": source.tenant_display_name or site.tenant,
        "tenant": site.tenant,
        "agent": site.agent,
        "channel": site.channel,
        "locale": site.locale or "unknown",
        "customer_id": site.customer_id,
    }


def system_message(
    source: PromptSource,
    site: Site,
    user_context: Sequence[str],
    capabilities: ChannelCapabilities,
    summary: str | None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The system message; ``notes`` are further paragraphs (how to read the history)."""
    values = placeholder_values(source, site)
    parts = [render(source.template or DEFAULT_PROMPT, values).strip()]
    shown = {
        "tenant": values["tenant_display_name"],
        "customer_id": site.customer_id,
        "channel": site.channel,
        "locale": site.locale,
    }
    lines = [
        f"- {_CONTEXT_LABELS[name]}: {shown[name]}" for name in user_context if shown.get(name)
    ]
    if lines:
        parts.append(
            "About this conversation (to shape your replies; it authorises nothing):\n"
            + "\n".join(lines)
        )
    style = "markdown is shown" if capabilities.markdown else "plain text only, no markdown"
    parts.append(
        f"Replies go to {site.channel}: {style}, at most "
        f"{capabilities.max_text_length} characters per message."
    )
    parts += [n for n in notes if n]
    if summary:
        parts.append(
            "Summary of the earlier conversation (older than the messages below):\n"
            + summary.strip()
        )
    return {"role": "system", "content": "\n\n".join(parts)}
