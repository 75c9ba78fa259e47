import pytest

from acf.domain.supersede import SupersedeDecision as D
from acf.domain.supersede import choose, may_commit_with_unseen


@pytest.mark.parametrize(
    ("default", "irreversible", "restarts", "hook", "expected"),
    [
        (D.SUPERSEDE, False, 0, None, D.SUPERSEDE),
        (D.SUPERSEDE, True, 0, None, D.QUEUE),  # default once the gate was passed
        (D.SUPERSEDE, False, 3, None, D.QUEUE),  # restart bound reached
        (D.SUPERSEDE, False, 2, None, D.SUPERSEDE),
        (D.ABSORB, False, 0, None, D.ABSORB),
        (D.QUEUE, False, 0, None, D.QUEUE),
        (D.QUEUE, False, 0, D.SUPERSEDE, D.SUPERSEDE),  # the hook decides per turn
        (D.SUPERSEDE, False, 0, D.ABSORB, D.ABSORB),
        (D.SUPERSEDE, True, 0, D.SUPERSEDE, D.QUEUE),  # never cancel after irreversible
        (D.SUPERSEDE, False, 5, D.SUPERSEDE, D.QUEUE),
        (D.SUPERSEDE, True, 0, D.FORCE_COMPLETE, D.FORCE_COMPLETE),
        (D.SUPERSEDE, False, 0, D.FORCE_COMPLETE, D.FORCE_COMPLETE),
        (D.ABSORB, True, 9, None, D.ABSORB),
    ],
)
def test_choose(default: D, irreversible: bool, restarts: int, hook: D | None, expected: D) -> None:
    assert choose(default, irreversible, restarts, hook=hook) is expected


def test_custom_restart_bound() -> None:
    assert choose(D.SUPERSEDE, False, 1, restart_bound=1) is D.QUEUE
    assert choose(D.SUPERSEDE, False, 0, restart_bound=1) is D.SUPERSEDE


COMMIT_CASES = [
    ("queue commits", D.QUEUE, False, 0, True),
    ("force_complete commits", D.FORCE_COMPLETE, False, 0, True),
    ("supersede does not", D.SUPERSEDE, False, 0, False),
    ("absorb with unseen does not", D.ABSORB, False, 0, False),
    ("after the gate it must", D.ABSORB, True, 0, True),
    ("past the restart bound it must", D.SUPERSEDE, False, 3, True),
]


@pytest.mark.parametrize(
    ("decision", "irreversible", "restarts", "expected"),
    [c[1:] for c in COMMIT_CASES],
    ids=[c[0] for c in COMMIT_CASES],
)
def test_may_commit_with_unseen(
    decision: D, irreversible: bool, restarts: int, expected: bool
) -> None:
    assert may_commit_with_unseen(decision, irreversible, restarts, 3) is expected
