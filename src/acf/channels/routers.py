"""The providers' webhook routes (``/v1/channels/<provider>/...``), in the order the HTTP
application includes them (the order of the OpenAPI document); the same providers as
``registry.PROVIDERS``, in the same order."""

from fastapi import APIRouter

from acf.channels.email import routes as email
from acf.channels.telegram import routes as telegram
from acf.channels.twilio import routes as twilio
from acf.channels.whatsapp import routes as whatsapp

ROUTERS: tuple[APIRouter, ...] = (whatsapp.router, email.router, telegram.router, twilio.router)
