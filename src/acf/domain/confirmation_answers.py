"""Unambiguous yes/no answers in English, Spanish, Portuguese, French and German."""

import re
from collections.abc import Sequence
from enum import StrEnum


class Answer(StrEnum):
    YES = "yes"
    NO = "no"


_YES = {
    "yes",
    "y",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "confirm",
    "confirmed",
    "go ahead",
    "do it",
    "please do",
    "yes please",
    "sí",
    "si",
    "claro",
    "dale",
    "vale",
    "confirmo",
    "de acuerdo",
    "sim",
    "claro que sim",
    "pode",
    "isso",
    "oui",
    "ouais",
    "d'accord",
    "je confirme",
    "vas-y",
    "ja",
    "jawohl",
    "genau",
    "bestätige",
    "einverstanden",
    "mach das",
}
_NO = {
    "no",
    "n",
    "nope",
    "nah",
    "cancel",
    "don't",
    "do not",
    "stop",
    "no thanks",
    "no thank you",
    "no gracias",
    "cancela",
    "cancelar",
    "no lo hagas",
    "não",
    "nao",
    "não obrigado",
    "cancele",
    "pare",
    "non",
    "non merci",
    "annule",
    "annuler",
    "arrête",
    "nein",
    "nein danke",
    "abbrechen",
    "stopp",
    "nicht",
}
_TRIM = re.compile(r"^[\s\"'¡¿]+|[\s!.?,;:\"'👍🙏]+$")


def classify_answer(text: str) -> Answer | None:
    """YES or NO when the whole text is one unambiguous answer, else None."""
    normalised = " ".join(_TRIM.sub("", text.lower()).split())
    if normalised in _YES:
        return Answer.YES
    if normalised in _NO:
        return Answer.NO
    return None


class Resolution(StrEnum):
    YES = "yes"
    NO = "no"
    EXPIRED = "expired"
    NONE = "none"
    """Not resolved here: the pipeline sees the confirmation still pending."""


def resolve(
    yes_id: str,
    no_id: str,
    expires_at_ms: int,
    messages: Sequence[tuple[str | None, str | None]],
    now_ms: int,
) -> Resolution:
    """How a turn's messages (text, button id) settle a pending confirmation (DESIGN §8).

    Expired: cancelled, whatever was said (nothing runs on timeout). Otherwise only a turn
    of exactly one message that is an unambiguous answer settles it: its button, or a
    yes/no word; anything else (two messages, a new request) goes to the pipeline."""
    if now_ms >= expires_at_ms:
        return Resolution.EXPIRED
    if len(messages) != 1:
        return Resolution.NONE
    text, button = messages[0]
    if button is not None:
        return {yes_id: Resolution.YES, no_id: Resolution.NO}.get(button, Resolution.NONE)
    answer = classify_answer(text or "")
    if answer is Answer.YES:
        return Resolution.YES
    if answer is Answer.NO:
        return Resolution.NO
    return Resolution.NONE
