"""Web-chat replies POSTed to a tenant's delivery URL (an integration that forwards them).

The body is JSON: ``{"tenant", "agent", "customer", "session_outbox_id", "payload"}``. A 2xx
is the provider's acceptance (its ``id`` field, if any, is the provider message id); a 4xx
other than 408 and 429 is a definite refusal; anything else (5xx, timeout, no connection)
is transient and retried by the relay. Each POST names the sending process in
``X-Acf-Instance`` (``host/pid``): an integration that sees a row twice can tell a resend
after a crash from two live senders.
"""

import os
import socket
from collections.abc import Mapping

import httpx

from acf.adapters.channels.provider_http import definite, json_or_none
from acf.adapters.channels.web import WebChannelSender
from acf.domain.ids import TenantId
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt


def instance_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


class WebhookChannelSender:
    def __init__(self, http: httpx.AsyncClient, urls: Mapping[TenantId, str]) -> None:
        self._http = http
        self._urls = dict(urls)
        self._web = WebChannelSender()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        url = self._urls.get(message.key.tenant)
        if url is None:
            return await self._web.send(message)
        body = {
            "tenant": message.key.tenant,
            "agent": message.key.agent,
            "customer": message.key.customer,
            "outbox_id": message.outbox_id,
            "payload": dict(message.payload),
        }
        try:
            response = await self._http.post(
                url, json=body, headers={"X-Acf-Instance": instance_name()}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"delivery URL unreachable: {exc!r}", definite=False) from None
        if response.is_success:
            data = json_or_none(response)
            ident = data.get("id") if isinstance(data, dict) else None
            return SendReceipt(str(ident) if ident else f"webhook-{message.outbox_id}")
        code = response.status_code
        raise DeliveryError(f"delivery URL answered {code}", definite=definite(code))
