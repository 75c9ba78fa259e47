"""Customers across channels (DESIGN §9): linked identities, and continuing a session on
another channel.

A customer is an id the tenant chooses (its CRM id, say) with addresses on channels, each
written as that channel's session key names the customer: a WhatsApp ``wa_id``, an E.164
number for SMS, an email address, a Telegram chat id, a web customer id. An address
belongs to at most one customer of the tenant. The fallback ladder sends a refused reply
to a linked address, and an operator can continue a conversation there.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from acf.domain.addresses import OTHER_PATTERN, PATTERNS, normalised_address
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.fallback import Route
from acf.domain.ids import SessionId
from acf.entrypoints.http.context import State, Tenant
from acf.entrypoints.http.errors import ApiError
from acf.entrypoints.http.routes_sessions import session_of
from acf.entrypoints.http.views import ErrorBody
from acf.ports.identities import AddressTaken, Identity, LinkIdentities, UnlinkIdentity
from acf.service.continuity import NotLinked, continue_on

router = APIRouter(prefix="/v1", tags=["customers"])

Responses = dict[int | str, dict[str, Any]]
_AUTH: Responses = {401: {"model": ErrorBody, "description": "No valid API key"}}
_INVALID: Responses = {
    422: {"model": ErrorBody, "description": "Invalid input (an unknown channel, …)"}
}

CustomerId = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Address = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Identity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("address", check_fields=False)
    @classmethod
    def _as_its_channel_writes_it(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        if channel is not None:
            try:
                normalised_address(Channel(channel), value)
            except InvalidValue as exc:
                raise ValueError(str(exc)) from None
        return value


def _address(channel: Channel, described: str) -> Any:
    """The schema carries the channel's pattern; a value that does not match is refused
    with a message that says what was expected."""
    return Field(
        min_length=1,
        max_length=256,
        description=f"As {described} webhooks name the customer",
        json_schema_extra={"pattern": PATTERNS.get(channel, OTHER_PATTERN)},
    )


class WhatsAppIdentity(_Identity):
    channel: Literal[Channel.WHATSAPP]
    address: str = _address(Channel.WHATSAPP, "WhatsApp's (digits; a leading + is dropped)")


class SmsIdentity(_Identity):
    channel: Literal[Channel.SMS]
    address: str = _address(Channel.SMS, "SMS (E.164)")


class EmailIdentity(_Identity):
    channel: Literal[Channel.EMAIL]
    address: str = _address(Channel.EMAIL, "email (compared lower-cased)")


class TelegramIdentity(_Identity):
    channel: Literal[Channel.TELEGRAM]
    address: str = _address(Channel.TELEGRAM, "Telegram (the chat id)")


class OtherIdentity(_Identity):
    channel: Literal[Channel.WEB, Channel.VOICE]
    address: str = _address(Channel.WEB, "the web chat's and voice")


IdentityBody = Annotated[
    WhatsAppIdentity | SmsIdentity | EmailIdentity | TelegramIdentity | OtherIdentity,
    Field(discriminator="channel"),
]
"""One address of a customer, checked as its channel writes it."""


class LinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identities: list[IdentityBody] = Field(min_length=1, max_length=20)


class IdentityView(BaseModel):
    channel: Channel
    address: str
    created_at_ms: int


class CustomerView(BaseModel):
    customer_id: str
    identities: list[IdentityView]


class ContinueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        pattern=r"\S",
        description="A notice sent to the customer there, after the session's queued replies.",
    )


class Continued(BaseModel):
    session_id: str
    channel: Channel
    address: str
    outbox_id: int | None = Field(description="The notice's reply row, when text was given.")


def _view(customer_id: str, identities: list[Identity]) -> CustomerView:
    items = [
        IdentityView(
            channel=i.route.channel, address=i.route.address, created_at_ms=i.created_at_ms
        )
        for i in identities
    ]
    return CustomerView(customer_id=customer_id, identities=items)


@router.put(
    "/customers/{customer_id}/identities",
    response_model=CustomerView,
    responses={
        **_AUTH,
        409: {"model": ErrorBody, "description": "An address is linked to another customer"},
        **_INVALID,
    },
    summary="Link addresses on channels to a customer",
)
async def link_identities(
    customer_id: CustomerId, body: LinkBody, tenant: Tenant, state: State
) -> CustomerView:
    """Adds the addresses (those already the customer's stay as they are). All or none: if
    one is another customer's, nothing is linked."""
    store = state.service.store
    routes = tuple(
        Route(i.channel, normalised_address(i.channel, i.address)) for i in body.identities
    )
    try:
        await store.uow.commit(
            tenant, [LinkIdentities(customer_id, routes, state.service.clock.now_ms())]
        )
    except AddressTaken as exc:
        raise ApiError(409, "address_taken", exc.reason) from None
    return _view(customer_id, await store.identities.of_customer(tenant, customer_id))


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerView,
    responses={
        **_AUTH,
        404: {"model": ErrorBody, "description": "No address is linked to this customer"},
        **_INVALID,
    },
    summary="A customer's linked addresses",
)
async def get_customer(customer_id: CustomerId, tenant: Tenant, state: State) -> CustomerView:
    identities = await state.service.store.identities.of_customer(tenant, customer_id)
    if not identities:
        raise ApiError(404, "not_found", f"no address is linked to customer {customer_id!r}")
    return _view(customer_id, identities)


@router.delete(
    "/customers/{customer_id}/identities/{channel}/{address}",
    status_code=204,
    response_class=Response,
    responses={
        **_AUTH,
        404: {"model": ErrorBody, "description": "That address is not linked to the customer"},
        **_INVALID,
    },
    summary="Unlink one address from a customer",
)
async def unlink_identity(
    customer_id: CustomerId,
    channel: Channel,
    address: Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")],
    tenant: Tenant,
    state: State,
) -> Response:
    try:
        address = normalised_address(channel, address)
    except InvalidValue as exc:  # it cannot have been linked: nothing to remove
        raise ApiError(404, "not_found", f"not linked: {exc}") from None
    op = UnlinkIdentity(customer_id, Route(channel, address))
    if not (await state.service.store.uow.commit(tenant, [op])).get(op):
        raise ApiError(
            404, "not_found", f"{channel.value} address {address!r} is not {customer_id!r}'s"
        )
    return Response(status_code=204)


@router.post(
    "/sessions/{session_id}/continue",
    status_code=202,
    response_model=Continued,
    responses={
        **_AUTH,
        404: {"model": ErrorBody, "description": "No such session for this tenant"},
        409: {"model": ErrorBody, "description": "No address linked on that channel"},
        **_INVALID,
    },
    tags=["sessions"],
    summary="Continue a session on another channel (and notify the customer there)",
)
async def continue_session(
    session_id: SessionId, body: ContinueBody, tenant: Tenant, state: State
) -> Any:
    """The customer's linked address on ``channel`` is routed to this session, so their
    answer there joins it; with ``text``, a notice is queued for that address."""
    service = state.service
    session = await session_of(state, tenant, session_id)
    try:
        done = await continue_on(service.store, service.clock, session, body.channel, body.text)
    except NotLinked as exc:
        raise ApiError(409, "not_linked", exc.reason) from None
    if done.outbox_id is not None and service.works:
        service.runtime.parts.poke_relay(tenant, session_id)
    return Continued(
        session_id=session_id,
        channel=done.route.channel,
        address=done.route.address,
        outbox_id=done.outbox_id,
    )
