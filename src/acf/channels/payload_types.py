"""What the WhatsApp and Telegram payload models share: strict field types, the bounds of a
provider timestamp, the leniency of optional fields, and validation errors told as
``where.field: what was wrong``.

Every model is strict (a JSON number is not a string, ``7.0`` is not an integer) and
ignores fields it does not name (providers add fields). A required field that is wrong
refuses its item; an optional one that is wrong (``Lenient``) is dropped, so a message
beside it is still taken.
"""

from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from acf.domain.errors import InvalidValue

T = TypeVar("T")
Model = TypeVar("Model", bound=BaseModel)

MIN_UNIX_S = 1
MAX_FUTURE_S = 24 * 3600
"""How far ahead of acf's clock a provider timestamp may be (clock skew), at most."""
MAX_UNIX_S = 253_402_300_799
"""9999-12-31T23:59:59Z: also what a timestamp can hold without overflowing milliseconds."""
MAX_ID_LENGTH = 256
"""A provider id or a button id: what the store's columns hold."""


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, populate_by_name=True)


def _storable(value: str) -> str:
    # JSON can carry a NUL (\u0000), which PostgreSQL cannot store in text. (A lone
    # surrogate, \ud800, is refused by pydantic's own string check.)
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_storable)]
NonEmpty = Annotated[str, StringConstraints(min_length=1), AfterValidator(_storable)]
Id = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_storable)
]
Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


Lenient = Annotated[T | None, WrapValidator(_or_none)]
"""An optional field: None when absent or malformed (the rest of its item still counts)."""


def validated(model: type[Model], value: Any, where: str) -> Model:
    """``value`` as ``model``, or ``InvalidValue`` naming the first wrong field under
    ``where`` (``""``: the body itself)."""
    try:
        return model.model_validate(value, strict=True)
    except ValidationError as exc:
        raise InvalidValue(first_error(exc, where)) from None


def first_error(exc: ValidationError, where: str) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    path = where
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    path = path or "body"
    if error["type"] in ("model_type", "dict_type"):
        return f"{path}: expected an object"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message[:1].lower()}{message[1:]}"


def unix_ms(seconds: int, where: str, now_ms: int) -> int:
    """A provider's unix seconds as milliseconds, refused (``InvalidValue``) when it is not
    after 1970 or is more than a day ahead of ``now_ms``: a time no message can have."""
    latest = min(MAX_UNIX_S, now_ms // 1000 + MAX_FUTURE_S)
    if not MIN_UNIX_S <= seconds <= latest:
        raise InvalidValue(
            f"{where}: {short(seconds)} is not a time a message can have "
            f"(unix seconds from {MIN_UNIX_S} to at most a day ahead of now)"
        )
    return seconds * 1000


def short(value: Any, limit: int = 64) -> str:
    """``repr(value)`` cut to ``limit`` characters: a provider's value quoted in a reason."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
