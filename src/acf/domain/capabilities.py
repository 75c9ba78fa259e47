"""Channel capabilities: facts about what a channel can show (DESIGN §9), as data.

acf's defaults come from the providers' documentation (``reference/channels.md``); a
tenant overrides them per channel (a WhatsApp number whose replies must stay plain text,
an SMS route that concatenates fewer characters). Pipelines read them from their turn
context to shape replies; the runtime reads them to show typing; formatting reads them to
decide when buttons become numbered options (and so when a number answers one).
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    max_text_length: int
    """Characters in one provider message; longer replies are split at sentence ends."""
    max_buttons: int = 0
    """Buttons the channel shows natively; 0: always numbered options."""
    max_button_title_length: int = 0
    media: bool = False
    typing_indicator: bool = False
    typing_lasts_ms: int = 0
    """How long one typing indicator shows: the runtime refreshes it before then."""
    read_receipts: bool = False
    markdown: bool = False
    streams_drafts: bool = False
    """The channel shows a running turn's drafts (DESIGN §16): only acf's web chat, over
    its SSE stream; every other channel gets only committed replies."""

    def __post_init__(self) -> None:
        if self.max_text_length < 1:
            raise InvalidValue("capabilities: max_text_length must be at least 1")
        if min(self.max_buttons, self.max_button_title_length, self.typing_lasts_ms) < 0:
            raise InvalidValue("capabilities: counts and durations must not be negative")
        if self.max_buttons and self.max_button_title_length < 1:
            raise InvalidValue("capabilities: buttons need max_button_title_length >= 1")
        if self.typing_indicator and self.typing_lasts_ms < 1:
            raise InvalidValue("capabilities: a typing indicator needs typing_lasts_ms >= 1")

    def with_overrides(self, changes: Mapping[str, Any]) -> "ChannelCapabilities":
        """These capabilities with ``changes`` applied (checked again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InvalidValue(f"capabilities: unknown fields {unknown}")
        return dataclasses.replace(self, **changes)


DEFAULT_CAPABILITIES: Mapping[Channel, ChannelCapabilities] = {
    # Reply buttons: at most 3, titles of at most 20; the indicator clears after 25 s.
    Channel.WHATSAPP: ChannelCapabilities(
        4096, 3, 20, True, True, 25_000, read_receipts=True, markdown=True
    ),
    # One message of up to 1,600 characters (Twilio concatenates the segments).
    Channel.SMS: ChannelCapabilities(1600),
    # acf's own pages: buttons, typing signals (peers expire them after ~5 s), drafts.
    Channel.WEB: ChannelCapabilities(
        16_384, 10, 64, True, True, 5_000, markdown=True, streams_drafts=True
    ),
    Channel.EMAIL: ChannelCapabilities(100_000, media=True),
    # Inline keyboards (callback data ≤ 64 bytes); sendChatAction lasts 5 s.
    Channel.TELEGRAM: ChannelCapabilities(4096, 10, 64, True, True, 5_000, markdown=True),
    Channel.VOICE: ChannelCapabilities(2000),
}
