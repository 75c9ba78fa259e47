"""Every scenario file under tests/scenarios runs here, as it does with `acf scenarios run`."""

from pathlib import Path

import pytest

from acf.testing import scenarios

SCENARIOS = Path(__file__).parent.parent / "scenarios"
FILES = scenarios.discover(SCENARIOS)


def test_there_are_at_least_thirty_scenarios() -> None:
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_scenario(path: Path, tmp_path: Path) -> None:
    result = await scenarios.run(scenarios.load(path), tmp_path, path)
    assert result.passed, "\n".join(result.problems)
