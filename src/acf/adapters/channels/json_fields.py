"""Fields of a provider's JSON webhook body, checked as they are read: each reader returns
the value with its type or raises ``InvalidValue`` naming where it is (``entry[0].id``), so
a webhook answers 422 naming the first malformed field. Shared by the WhatsApp and Telegram
parsers, which read bodies of the same kind."""

from typing import Any

from acf.domain.errors import InvalidValue


def as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidValue(f"{where}: expected an object")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidValue(f"{where}: expected a list")
    return value


def as_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValue(f"{where}: expected a non-empty string")
    return value
