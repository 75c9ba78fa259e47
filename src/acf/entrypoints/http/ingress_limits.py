"""What the customer API's ingress routes share (``POST /v1/messages``, ``/v1/typing``,
``/v1/sessions/{id}/agent-answer``): the two rates they answer 429 at, and the answer to
a message taken.

The caller of the customer API is the tenant's own code, which can retry: over the
tenant's accepted-message rate (``limits.accepted_messages``), or over the customer's own
rate on the channel (the firewall's ``limits``, when the tenant's firewall is on), the
request is refused with 429 and ``Retry-After``, and nothing is stored. A session the
firewall or an operator holds (cool-down, blocked, human mode) is no reason to refuse: the
message is stored and the answer says it is ``held``. Signed provider webhooks are never
refused for a rate (``webhooks.note_rate``).
"""

import structlog
from pydantic import BaseModel, Field

from acf.domain.session_key import SessionKey
from acf.entrypoints.http.context import ApiState
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.limits import customer_wait_s
from acf.entrypoints.http.views import ErrorBody
from acf.ports.firewall import RateCounts
from acf.service.ingress import Accepted

log = structlog.get_logger("acf.http")

RATE_LIMITED = {
    "model": ErrorBody,
    "description": "Over the tenant's message rate, or over the customer's rate on the "
    "channel; see Retry-After",
}


class MessageAccepted(BaseModel):
    message_id: str
    session_id: str
    seq: int
    duplicate: bool = Field(description="True when the message was already stored.")
    trace_id: str
    held: str | None = Field(
        default=None,
        description="The session's mode when the agent does not answer it now "
        "(cooldown, blocked, human): the message is stored and held. Null otherwise.",
    )


def accepted_view(accepted: Accepted) -> MessageAccepted:
    return MessageAccepted(
        message_id=accepted.message_id,
        session_id=accepted.session_id,
        seq=accepted.seq,
        duplicate=accepted.duplicate,
        trace_id=accepted.trace_id,
        held=accepted.held,
    )


async def admit(state: ApiState, key: SessionKey, kind: str = "messages") -> None:
    """429 with Retry-After when ``key``'s customer is over their rate on its channel, or
    its tenant over its rate of ``kind`` (messages, typing); else the request is counted in
    the tenant's budget. The customer's counts are only read here: the firewall counts each
    message it takes (``Firewall.after_accept``)."""
    service = state.service
    tenant = key.tenant
    firewall = service.people(tenant).firewall
    if firewall.enabled:
        now_ms = service.clock.now_ms()
        counts = await _counts(state, key, now_ms)
        limits = firewall.limits_for(key.channel.value)
        wait_s = None if counts is None else customer_wait_s(counts, limits, now_ms)
        if wait_s is not None:
            service.metrics.rate_limited(tenant)
            raise rate_limited(
                f"customer {key.customer} is over their message rate on {key.channel.value}",
                wait_s,
            )
    wait_s = await state.limits.admit(tenant, kind)
    if wait_s is not None:
        service.metrics.rate_limited(tenant)
        what = "typing-signal" if kind == "typing" else "accepted-message"
        raise rate_limited(f"tenant {tenant} is over its {what} rate", wait_s)


async def _counts(state: ApiState, key: SessionKey, now_ms: int) -> RateCounts | None:
    """The customer's counts; None when the counters cannot be read (logged): a limit that
    cannot be read never refuses a message, as the tenant's (``TenantLimits``) never does."""
    rates = state.service.store.customer_rates
    try:
        return await rates.peek(key.tenant, key.channel, key.customer, now_ms)
    except Exception as exc:  # Redis and the store both away: the message goes on
        log.warning(
            "customer_rates.unreadable",
            tenant=key.tenant,
            channel=key.channel.value,
            error=f"{type(exc).__name__}: {exc}",
        )
        return None


def rate_limited(what: str, wait_s: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"{what}; retry in {wait_s} s",
        headers={"Retry-After": str(wait_s)},
    )
