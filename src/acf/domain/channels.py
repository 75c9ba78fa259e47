"""The channels acf knows by name."""

from enum import StrEnum


class Channel(StrEnum):
    WHATSAPP = "whatsapp"
    SMS = "sms"
    WEB = "web"
    EMAIL = "email"
    TELEGRAM = "telegram"
    VOICE = "voice"
