"""Unambiguous yes/no answers in English, Spanish, Portuguese, French and German."""

import re
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
