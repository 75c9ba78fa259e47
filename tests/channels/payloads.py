"""WhatsApp Cloud API webhook bodies in the documented shapes (reference/channels.md)."""

import hashlib
import hmac
import json
from typing import Any

APP_SECRET = "wa-app-secret"
PHONE_NUMBER_ID = "106540352242922"


def envelope(*values: dict[str, Any]) -> dict[str, Any]:
    """One entry per value, one change each."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "WABA_ID", "changes": [{"value": value, "field": "messages"}]}
            for value in values
        ],
    }


def value(
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    name: str = "Sheena Nelson",
    wa_id: str = "16505551234",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages is not None:
        out["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
        out["messages"] = messages
    if statuses is not None:
        out["statuses"] = statuses
    return out


def text(
    wamid: str, body: str, at: int = 1749416383, sender: str = "16505551234"
) -> dict[str, Any]:
    return {
        "from": sender,
        "id": wamid,
        "timestamp": str(at),
        "type": "text",
        "text": {"body": body},
    }


def button_reply(wamid: str, button_id: str, title: str, at: int = 1750025136) -> dict[str, Any]:
    return {
        "context": {"from": "15550783881", "id": "wamid.outbound"},
        "from": "16505551234",
        "id": wamid,
        "timestamp": str(at),
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": button_id, "title": title}},
    }


def signed(body: dict[str, Any] | bytes, secret: str = APP_SECRET) -> tuple[bytes, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, f"sha256={digest}"
