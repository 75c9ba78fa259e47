"""Inbound mail of a tenant's support address: ``/v1/channels/email/{tenant}/mailgun`` (a
Mailgun route forwarding to this URL) and ``.../sendgrid`` (SendGrid Inbound Parse).

Each mail is one message (email does not accumulate: one mail, one turn). It is stored
(deduplicated on a hash of Message-ID, sender and recipient) before the 200, its thread
recorded first, so a provider's retry stores nothing twice and the reply finds what it
answers. A mail whose In-Reply-To or References names a mail acf sent joins that mail's
customer when it comes from them (the same address, or one linked to the same customer:
``PUT /v1/customers/{id}/identities``); anyone else answering the thread, and any other
mail, is the customer of its From address.

Statuses: 401 when the Mailgun signature (or its timestamp, 15 minutes either way) or
SendGrid's basic auth does not match, nothing stored. Mailgun reads 406 as "reject, do
not retry" and retries every other error for 8 hours; a forged request gets 401 like any
bad signature, so that a signing key rotated on one side only is retried (and accepted
once fixed) rather than dropped. SendGrid retries only 5xx: its 4xx drop the mail, which
is right for a malformed one. 422 names the missing or malformed field; 413 (over the
3 MB webhook limit, attachments included) is retried by Mailgun. A mail over the tenant's
rate is stored and acknowledged all the same, with a ``rate.exceeded`` event: SendGrid
would drop it on a 429. Mails acf does not answer (auto-replies, mails without text) are
skipped with a 200.

The form is read strictly: a field that is not valid in its charset (UTF-8, or the one
SendGrid's ``charsets`` names) is 422 naming it, never stored garbled; a body that is not
a form at all is 400. A mail delivered to none of the tenant's addresses (``address``,
``aliases``) is refused and audited (``webhook.refused``): 406 to Mailgun (its "reject, do
not retry"), 403 to SendGrid (which retries no 4xx). A text longer than a message holds
is stored cut, with a ``message.truncated`` event (``original_length``) in the same
transaction: refusing it would lose the mail (SendGrid drops a 4xx, Mailgun gives up
after 8 hours of the same answer).
"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from acf.channels.email.config import EmailFields
from acf.channels.email.inbound import (
    InboundMail,
    basic_auth_ok,
    mailgun_signature_problem,
    owned_recipient,
    parse_mailgun,
    parse_sendgrid,
)
from acf.channels.email.payload import MAILGUN_FIELDS, declared_charsets
from acf.channels.form import (
    decode_parts,
    multipart_parts,
    parse_urlencoded,
    single,
)
from acf.domain.channels import Channel
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.fallback import Route
from acf.domain.messages import MAX_TEXT_LENGTH, NewMessage
from acf.entrypoints.http import webhook_audit, webhooks
from acf.entrypoints.http.context import ApiState, State
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.views import WebhookAccepted
from acf.ports.event_store import AppendEvent
from acf.ports.request_log import ReserveRequest
from acf.ports.store import Store

router = APIRouter(prefix="/v1/channels/email", tags=["email"])

_RESPONSES: webhooks.Responses = {
    400: webhooks.NOT_A_FORM,
    401: webhooks.error("Signature or basic auth does not match"),
    403: webhooks.error("SendGrid: the mail is for none of the tenant's addresses"),
    404: webhooks.error("The tenant has no email address or provider"),
    406: webhooks.error("Mailgun: the mail is for none of the tenant's addresses"),
    413: webhooks.TOO_LARGE,
    422: webhooks.error("A field is missing or malformed (named)"),
    503: webhooks.SECRET_NOT_SET,
}


def _account(state: ApiState, tenant: str) -> EmailFields:
    return webhooks.account(state, tenant, lambda fields: fields.email, "email address")


async def _form(request: Request) -> list[tuple[str, str]]:
    """The form's text fields, strictly decoded (attachments are not taken)."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    raw = await request.body()
    try:
        if kind == "application/x-www-form-urlencoded":
            return parse_urlencoded(raw)
        if kind != "multipart/form-data":
            raise InvalidValue("expected multipart/form-data or a urlencoded form")
        parts = multipart_parts(raw, content_type)
    except InvalidValue as exc:
        raise ApiError(400, "not_a_form", str(exc)) from None
    declared = [p for p in parts if p.name == "charsets"]
    charsets = webhooks.parsed(
        "invalid_mail",
        lambda: declared_charsets(dict(decode_parts(declared)).get("charsets")),
    )
    return webhooks.parsed("invalid_mail", decode_parts, parts, charsets)


@router.post(
    "/{tenant}/mailgun",
    response_model=WebhookAccepted,
    responses=_RESPONSES,
    summary="A mail forwarded by a Mailgun route",
)
async def mailgun(tenant: str, request: Request, state: State) -> Any:
    account = _account(state, tenant)
    if account.inbound.mailgun is None:
        raise ApiError(404, "not_found", f"tenant {tenant} takes no mail from Mailgun")
    key = webhooks.secret(account.inbound.mailgun.signing_key, "email")
    form = await _form(request)
    fields = webhooks.parsed("invalid_mail", single, form, MAILGUN_FIELDS)
    problem = mailgun_signature_problem(key, fields, state.service.clock.now_ms() / 1000)
    if problem is not None:
        raise ApiError(401, "bad_signature", f"Mailgun {problem}")
    token = str(fields.get("token"))
    return await _take(
        state,
        tenant,
        account,
        request,
        lambda: parse_mailgun(form),
        provider="mailgun",
        once=f"mailgun:{token}",
    )


@router.post(
    "/{tenant}/sendgrid",
    response_model=WebhookAccepted,
    responses=_RESPONSES,
    summary="A mail posted by SendGrid Inbound Parse",
)
async def sendgrid(tenant: str, request: Request, state: State) -> Any:
    account = _account(state, tenant)
    parse = account.inbound.sendgrid
    if parse is None:
        raise ApiError(404, "not_found", f"tenant {tenant} takes no mail from SendGrid")
    if parse.basic_auth is not None:
        expected = webhooks.secret(parse.basic_auth, "email")
        if not basic_auth_ok(request.headers.get("authorization"), expected):
            raise ApiError(401, "bad_credentials", "Authorization: Basic does not match")
    form = await _form(request)
    return await _take(
        state, tenant, account, request, lambda: parse_sendgrid(form), provider="sendgrid"
    )


async def _take(
    state: ApiState,
    tenant: str,
    account: EmailFields,
    request: Request,
    parse: Callable[[], InboundMail],
    provider: str,
    once: str | None = None,
) -> WebhookAccepted:
    parsed = webhooks.parsed("invalid_mail", parse)
    mail = owned_recipient(parsed, [account.address, *account.aliases])
    if mail is None:
        raise await _not_ours(state, request, tenant, provider, parsed)
    if once is not None:
        await _use_once(state, tenant, once, mail)
    skipped = _skip_reason(mail)
    if skipped is not None:
        return WebhookAccepted(
            accepted=0, duplicates=0, statuses_applied=0, statuses_ignored=0, skipped=[skipped]
        )
    service = state.service
    threads = service.store.email_threads
    thread = await threads.find_customer(tenant, mail.in_reply_to, mail.references)
    customer = mail.customer
    if thread is not None and await _same_customer(service.store, tenant, thread, customer):
        customer = thread
    message = webhooks.parsed("invalid_mail", mail.message, tenant, account.agent, customer)
    # The thread first: the reply (after the accept) must find what it answers.
    await threads.record_inbound(
        tenant,
        customer,
        mail.message_id,
        mail.thread_references,
        mail.subject,
        service.clock.now_ms(),
    )
    duplicate = await _accept(state, request, message, provider, mail.truncated_from)
    return WebhookAccepted(
        accepted=int(not duplicate),
        duplicates=int(duplicate),
        statuses_applied=0,
        statuses_ignored=0,
        skipped=[],
    )


async def _not_ours(
    state: ApiState, request: Request, tenant: str, provider: str, mail: InboundMail
) -> ApiError:
    """Audits a mail for none of the tenant's addresses; the answer to raise (Mailgun's
    406 is "reject, do not retry"; SendGrid retries no 4xx)."""
    sent_to = ", ".join(mail.recipients)[:500]
    reason = f"the mail is for {sent_to}, none of the tenant's addresses"
    data = {"field": "recipient", "message_id": mail.message_id[:200]}
    await webhook_audit.refused(state, request, tenant, provider, reason, data)
    return ApiError(406 if provider == "mailgun" else 403, "not_tenant_address", reason)


async def _accept(
    state: ApiState,
    request: Request,
    message: NewMessage,
    provider: str,
    truncated_from: int | None,
) -> bool:
    """``webhooks.take``, with the ``message.truncated`` event of a cut text committed
    with the message (a retry of the same mail may record it again: same provider id)."""
    service = state.service
    guards = await webhooks.note_rate(state, request, message)
    if truncated_from is not None:
        data = {
            "provider": provider,
            "provider_message_id": message.provider_message_id,
            "original_length": truncated_from,
            "stored_length": MAX_TEXT_LENGTH,
        }
        correlation = Correlation(message.key.tenant, request.state.trace_id)
        event = FabricEvent(EventKind.MESSAGE_TRUNCATED, service.clock.now_ms(), correlation, data)
        guards.append(AppendEvent(event))
    return await webhooks.accept(state, request, message, guards)


async def _use_once(state: ApiState, tenant: str, token: str, mail: InboundMail) -> None:
    """Mailgun signs its timestamp and token, not the mail: a signature seen once (in a
    log, at a proxy) could carry any content for 15 minutes. The token is reserved for this
    mail (like an ``Idempotency-Key``), so it carries no other; a retry of the same mail
    passes and is then a duplicate."""
    service = state.service
    reserve = ReserveRequest(token, mail.provider_id, service.clock.now_ms())
    try:
        await service.store.uow.commit(tenant, [reserve])
    except Conflict:
        raise ApiError(
            401, "bad_signature", "Mailgun token already used to sign another mail"
        ) from None


async def _same_customer(store: Store, tenant: str, thread: str, sender: str) -> bool:
    """Whether a reply to ``thread``'s customer comes from them: the same address, or one
    linked to the same customer. Anyone else answering the thread (a forward, a reply to
    all) is a conversation of their own, never a voice in the customer's."""
    if thread == sender:
        return True
    owner = await store.identities.owner(tenant, Route(Channel.EMAIL, sender))
    return owner is not None and owner == await store.identities.owner(
        tenant, Route(Channel.EMAIL, thread)
    )


def _skip_reason(mail: InboundMail) -> str | None:
    if mail.auto_submitted:
        return f"{mail.message_id}: an automatic reply (Auto-Submitted), not answered"
    if not (mail.text or mail.subject):
        return f"{mail.message_id}: the mail has no text"
    return None
