"""Halves of a chat log by conversation (pure)."""

from pathlib import Path

import pytest

from acf.replay.sources import ChatLine, read_csv
from acf.replay.split import SPLIT_SEED, conversations_of, first_conversations, half_of, split

SAMPLE = read_csv(Path(__file__).parents[2] / "examples" / "chat-timing-sample.csv")


def test_the_halves_are_disjoint_and_make_up_the_log() -> None:
    fit, test = split(SAMPLE, "fit"), split(SAMPLE, "test")
    assert fit and test
    assert not set(fit) & set(test)
    assert sorted(fit + test, key=SAMPLE.index) == SAMPLE
    assert split(SAMPLE, "all") == SAMPLE


def test_a_conversation_is_never_cut() -> None:
    fit, test = split(SAMPLE, "fit"), split(SAMPLE, "test")
    assert not set(conversations_of(fit)) & set(conversations_of(test))
    for half in (fit, test):
        for conversation in conversations_of(half):
            assert [x for x in half if x.conversation == conversation] == [
                x for x in SAMPLE if x.conversation == conversation
            ]


@pytest.mark.parametrize(
    ("conversation", "seed", "half"),
    [
        # pinned: the same halves in every process and Python version (no salted hash)
        ("0", 23, "fit"),
        ("1", 23, "fit"),
        ("3", 23, "test"),
        ("7", 23, "test"),
        ("7", 24, "fit"),
        ("conv-42", 23, "fit"),
        ("conv-42", 24, "test"),
    ],
)
def test_a_conversations_half_depends_on_the_seed_and_its_id(
    conversation: str, seed: int, half: str
) -> None:
    assert half_of(conversation, seed) == half
    lines = [ChatLine(conversation, "ann", 0, "x")]
    assert split(lines, half, seed) == lines


def test_adding_or_removing_conversations_moves_no_other() -> None:
    fit = set(conversations_of(split(SAMPLE, "fit")))
    for gone in conversations_of(SAMPLE)[:10]:
        rest = [x for x in SAMPLE if x.conversation != gone]
        assert set(conversations_of(split(rest, "fit"))) == fit - {gone}
    added = [ChatLine(f"new-{n}", "ann", n, "x") for n in range(5)]
    assert (
        set(conversations_of(split(added + SAMPLE, "fit"))) - {c.conversation for c in added} == fit
    )


def test_the_halves_are_about_even() -> None:
    lines = [ChatLine(f"c{n}", "ann", n, "x") for n in range(1000)]
    assert 450 <= len(split(lines, "fit")) <= 550
    assert split([], "fit") == split([], "test") == []


def test_the_halves_keep_time_order() -> None:
    for half in ("fit", "test"):
        times = [x.at_ms for x in split(SAMPLE, half)]
        assert times == sorted(times)


def test_the_halves_depend_on_the_seed_only() -> None:
    fit = split(SAMPLE, "fit")
    assert split(SAMPLE, "fit", SPLIT_SEED) == fit
    assert split(list(SAMPLE), "fit") == fit
    assert conversations_of(split(SAMPLE, "fit", seed=24)) != conversations_of(fit)
    # not simply the first or the last conversations of the log
    order = conversations_of(SAMPLE)
    assert set(conversations_of(fit)) != set(order[: len(order) // 2])
    assert set(conversations_of(fit)) != set(order[len(order) - len(order) // 2 :])


def test_an_unknown_half_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"'train'.*all, fit, test"):
        split(SAMPLE, "train")


def test_first_conversations() -> None:
    lines = [
        ChatLine("b", "ann", 0, "x"),
        ChatLine("a", "bob", 1, "x"),
        ChatLine("b", "ann", 2, "x"),
        ChatLine("c", "cy", 3, "x"),
    ]
    assert first_conversations(lines, 2) == lines[:3]
    assert first_conversations(lines, 9) == lines
