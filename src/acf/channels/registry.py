"""The providers acf has, for the composition root (their senders, from the tenants'
accounts). Their webhook routes are listed for the HTTP application in ``routers``."""

from acf.channels.email.provider import EMAIL
from acf.channels.provider import AnyProvider
from acf.channels.telegram.provider import TELEGRAM
from acf.channels.twilio.provider import TWILIO
from acf.channels.whatsapp.provider import WHATSAPP

PROVIDERS: tuple[AnyProvider, ...] = (WHATSAPP, EMAIL, TELEGRAM, TWILIO)
