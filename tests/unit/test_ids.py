import random

from acf.domain.ids import new_id, new_trace_id


def test_ids_do_not_repeat_when_someone_seeds_the_global_generator() -> None:
    random.seed(7)
    first = new_id()
    random.seed(7)
    assert new_id() != first
    assert len(first) == 32 and int(first, 16) >= 0
    assert int(new_trace_id(), 16) != 0
