"""Whether a signed Twilio webhook is addressed to the tenant (pure).

A valid signature proves the request came from a Twilio account whose auth token the
tenant configured; it does not prove the message is for this tenant's numbers (one auth
token may sign for subaccounts, a number may be moved, a webhook URL copied). So the
``AccountSid`` must be the tenant's, and the ``To`` one of its senders: ``whatsapp:`` and
``whatsapp_from`` for WhatsApp (a tenant whose WhatsApp goes through Meta has none through
Twilio, so it never answers such a message through Meta), and ``from_number`` for SMS, or
any number of the tenant's Messaging Service (``MessagingServiceSid``).
"""

from dataclasses import dataclass

from acf.channels.twilio.payload import WHATSAPP_PREFIX, TwilioForm, TwilioMessage


@dataclass(frozen=True, slots=True)
class TwilioNumbers:
    """What the tenant owns at Twilio."""

    account_sid: str
    sms_number: str | None
    whatsapp_number: str | None
    messaging_service_sid: str | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a webhook is not the tenant's: the field, and what was wrong with it."""

    field: str
    reason: str


def account_refusal(numbers: TwilioNumbers, form: TwilioForm) -> Refusal | None:
    """A refusal when the webhook is from another Twilio account."""
    if form.account_sid != numbers.account_sid:
        return Refusal("AccountSid", "AccountSid is not the tenant's Twilio account")
    return None


def message_refusal(numbers: TwilioNumbers, form: TwilioMessage) -> Refusal | None:
    """A refusal when the message is not addressed to the tenant's account and numbers."""
    refused = account_refusal(numbers, form)
    if refused is not None:
        return refused
    if form.is_whatsapp:
        if numbers.whatsapp_number is None:
            return Refusal("To", "the tenant's WhatsApp does not go through Twilio")
        if form.to != WHATSAPP_PREFIX + numbers.whatsapp_number:
            return Refusal("To", f"{form.to} is not the tenant's WhatsApp sender")
        return None
    if numbers.sms_number is not None and form.to == numbers.sms_number:
        return None
    service = numbers.messaging_service_sid
    if service is not None and form.service_sid() == service:
        return None
    return Refusal("To", f"{form.to} is not one of the tenant's SMS numbers")
