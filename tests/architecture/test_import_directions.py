"""The import directions of DESIGN §14 hold: each contract of pyproject.toml's
``[tool.importlinter]`` is checked by import-linter on the installed ``acf``, so a wrong-way
import fails the suite as well as ``make lint``. A broken contract's output names the chain
of imports to undo."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contract_ids() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [contract["id"] for contract in config["tool"]["importlinter"]["contracts"]]


def test_every_direction_of_design_has_its_contract() -> None:
    """Dropping a contract is a decision for DESIGN §14, not a way to make lint pass."""
    assert sorted(contract_ids()) == [
        "adapters",
        "core-without-providers",
        "http-routes",
        "layers",
        "pipelines",
        "providers",
        "runtime-without-tools",
        "service",
    ]


@pytest.mark.parametrize("contract", contract_ids())
def test_the_contract_is_kept(contract: str) -> None:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--contract", contract],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
