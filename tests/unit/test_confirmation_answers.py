import pytest

from acf.domain.confirmation_answers import Answer, Resolution, classify_answer, resolve


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


@pytest.mark.parametrize(
    ("messages", "now", "expected"),
    [
        ([("yes please", None)], 0, Resolution.YES),
        ([("no", None)], 0, Resolution.NO),
        ([(None, "c:yes")], 0, Resolution.YES),
        ([(None, "c:no")], 0, Resolution.NO),
        ([(None, "other-button")], 0, Resolution.NONE),
        ([("yes", None), ("and also cancel my other order", None)], 0, Resolution.NONE),
        ([("what time is it?", None)], 0, Resolution.NONE),
        ([("yes", None)], 1_000, Resolution.EXPIRED),  # never executes on timeout
        ([("sí", None)], 0, Resolution.YES),
    ],
)
def test_resolve(
    messages: list[tuple[str | None, str | None]], now: int, expected: Resolution
) -> None:
    assert resolve("c:yes", "c:no", 1_000, messages, now) is expected
