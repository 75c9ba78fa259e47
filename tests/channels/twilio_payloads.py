"""Twilio webhook forms in the documented shapes (reference/channels.md), and signing."""

from urllib.parse import urlencode

from acf.channels.twilio.signature import signature

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token"
OUR_NUMBER = "+15017122661"
OUR_WHATSAPP = "+14155238886"
CUSTOMER = "+14158675310"


def sid(n: int, prefix: str = "SM") -> str:
    return f"{prefix}{n:032x}"


def sms(message_sid: str, body: str, sender: str = CUSTOMER, **extra: str) -> dict[str, str]:
    """An inbound SMS as Twilio posts it (the geographic fields included: all are signed)."""
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": message_sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": body,
        "FromCountry": "US",
        "To": OUR_NUMBER,
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def whatsapp(
    message_sid: str, body: str, wa_id: str = "14158675310", **extra: str
) -> dict[str, str]:
    """An inbound WhatsApp message through Twilio."""
    return {
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "ProfileName": "Sheena Nelson",
        "MessageType": "text",
        "SmsSid": message_sid,
        "WaId": wa_id,
        "SmsStatus": "received",
        "Body": body,
        "To": f"whatsapp:{OUR_WHATSAPP}",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": f"whatsapp:+{wa_id}",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def status(message_sid: str, name: str, **extra: str) -> dict[str, str]:
    """A status callback for a message acf sent."""
    return {
        "SmsSid": message_sid,
        "SmsStatus": name,
        "MessageStatus": name,
        "To": CUSTOMER,
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": OUR_NUMBER,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def signed(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> tuple[str, str]:
    """The form-encoded body and its ``X-Twilio-Signature`` for a POST to ``url``."""
    return urlencode(form), signature(url, list(form.items()), token)
