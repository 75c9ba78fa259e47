"""Whether a signed Twilio webhook is the tenant's (pure, table-driven)."""

import pytest

from acf.channels.twilio.binding import (
    TwilioNumbers,
    account_refusal,
    message_refusal,
)
from acf.channels.twilio.payload import message_form, status_form
from tests.channels.twilio_payloads import (
    ACCOUNT_SID,
    OUR_NUMBER,
    OUR_WHATSAPP,
    sid,
    sms,
    status,
    whatsapp,
)

SERVICE = "MG" + "1" * 32
OTHER_ACCOUNT = "AC" + "f" * 32
SMS_AND_WHATSAPP = TwilioNumbers(ACCOUNT_SID, OUR_NUMBER, OUR_WHATSAPP, None)
SMS_ONLY = TwilioNumbers(ACCOUNT_SID, OUR_NUMBER, None, None)
SERVICE_ONLY = TwilioNumbers(ACCOUNT_SID, None, None, SERVICE)


@pytest.mark.parametrize(
    ("numbers", "form", "refused"),
    [
        (SMS_AND_WHATSAPP, sms(sid(1), "hi"), None),
        (SMS_AND_WHATSAPP, whatsapp(sid(1), "hi"), None),
        (SMS_AND_WHATSAPP, sms(sid(1), "hi", AccountSid=OTHER_ACCOUNT), "AccountSid"),
        (SMS_AND_WHATSAPP, whatsapp(sid(1), "hi", AccountSid=OTHER_ACCOUNT), "AccountSid"),
        (SMS_AND_WHATSAPP, sms(sid(1), "hi", To="+15550001111"), "To"),
        (SMS_AND_WHATSAPP, sms(sid(1), "hi", To=f"whatsapp:{OUR_WHATSAPP}"), "To"),
        (SMS_AND_WHATSAPP, whatsapp(sid(1), "hi", To=f"whatsapp:{OUR_NUMBER}"), "To"),
        (SMS_AND_WHATSAPP, whatsapp(sid(1), "hi", To=OUR_WHATSAPP), "To"),
        (SMS_ONLY, whatsapp(sid(1), "hi"), "To"),  # its WhatsApp, if any, is Meta's
        (SERVICE_ONLY, sms(sid(1), "hi", To="+15550002222", MessagingServiceSid=SERVICE), None),
        (SERVICE_ONLY, sms(sid(1), "hi", To="+15550002222"), "To"),
        (SERVICE_ONLY, sms(sid(1), "hi", MessagingServiceSid="MG" + "2" * 32), "To"),
        (SERVICE_ONLY, sms(sid(1), "hi", MessagingServiceSid="not a sid"), "To"),
    ],
)
def test_a_message_is_the_tenant_s_only_on_its_account_and_numbers(
    numbers: TwilioNumbers, form: dict[str, str], refused: str | None
) -> None:
    refusal = message_refusal(numbers, message_form(list(form.items())))
    assert (refusal.field if refusal else None) == refused


def test_a_status_callback_is_the_tenant_s_only_on_its_account() -> None:
    ours = status_form(list(status(sid(2), "sent").items()))
    theirs = status_form(list(status(sid(2), "sent", AccountSid=OTHER_ACCOUNT).items()))
    assert account_refusal(SMS_ONLY, ours) is None
    refusal = account_refusal(SMS_ONLY, theirs)
    assert refusal is not None and refusal.field == "AccountSid"
