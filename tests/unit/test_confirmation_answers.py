import pytest

from acf.domain.confirmation_answers import Answer, classify_answer


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("yes", Answer.YES),
        ("Yes please!", Answer.YES),
        ("  OK 👍", Answer.YES),
        ("sí", Answer.YES),
        ("¡Claro!", Answer.YES),
        ("sim", Answer.YES),
        ("oui", Answer.YES),
        ("Ja.", Answer.YES),
        ("no", Answer.NO),
        ("no thanks", Answer.NO),
        ("não", Answer.NO),
        ("non merci", Answer.NO),
        ("Nein!", Answer.NO),
        ("cancel", Answer.NO),
        ("yes but refund the other order", None),
        ("maybe", None),
        ("yes no", None),
        ("", None),
    ],
)
def test_classify(text: str, answer: Answer | None) -> None:
    assert classify_answer(text) is answer
