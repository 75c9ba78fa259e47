"""The audit of signed webhooks refused because they are not the tenant's: a
``webhook.refused`` event for the tenant (no session: nothing was stored), naming the
provider, the field and why. No credential is recorded: the signature is never, and an
account id only as "not the tenant's"."""

from collections.abc import Mapping

from fastapi import Request

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_trace_id
from acf.entrypoints.http.context import ApiState
from acf.ports.event_store import AppendEvent


async def refused(
    state: ApiState,
    request: Request,
    tenant: str,
    provider: str,
    reason: str,
    data: Mapping[str, str | int | None] | None = None,
) -> None:
    """Commits the ``webhook.refused`` event of this request."""
    trace_id = getattr(request.state, "trace_id", None) or new_trace_id()
    event = FabricEvent(
        EventKind.WEBHOOK_REFUSED,
        state.service.clock.now_ms(),
        Correlation(tenant, trace_id),
        {"provider": provider, "reason": reason, "path": request.url.path, **(data or {})},
    )
    await state.service.store.uow.commit(tenant, [AppendEvent(event)])
