"""The audit of the items a signed webhook carried and acf did not take (malformed, or of a
kind acf does not take): one ``webhook.skipped`` event per request for the tenant whose
webhook it was (no session: nothing was stored), with the reasons, each the item's place in
the body and what was wrong. The reasons kept are bounded, so a provider's batch of garbage
cannot make an unbounded event. Items addressed to another number are ``webhook.refused``
(``webhook_audit``)."""

from collections.abc import Sequence

from fastapi import Request

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_trace_id
from acf.entrypoints.http.context import ApiState
from acf.ports.event_store import AppendEvent

MAX_REASONS = 50
MAX_REASON_LENGTH = 500


async def skipped(
    state: ApiState, request: Request, tenant: str, provider: str, reasons: Sequence[str]
) -> None:
    """Commits the ``webhook.skipped`` event of this request (none when nothing was)."""
    if not reasons:
        return
    trace_id = getattr(request.state, "trace_id", None) or new_trace_id()
    data = {
        "provider": provider,
        "path": request.url.path,
        "count": len(reasons),
        "reasons": [reason[:MAX_REASON_LENGTH] for reason in reasons[:MAX_REASONS]],
    }
    event = FabricEvent(
        EventKind.WEBHOOK_SKIPPED, state.service.clock.now_ms(), Correlation(tenant, trace_id), data
    )
    await state.service.store.uow.commit(tenant, [AppendEvent(event)])
