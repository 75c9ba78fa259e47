"""A ``python`` pipeline's module is found next to the configuration file: no PYTHONPATH."""

import sys
import textwrap
import uuid
from pathlib import Path

import httpx
import pytest

from acf.bootstrap import ToolBackends, build_agents
from acf.config.load import ConfigError, load_config
from acf.demo import demo_tools
from tests.config.test_config_file import base, write

PIPELINE = """
from {package}.wording import GREETING

from acf import PipelineResult


class Desk:
    name = "desk"
    version = "1"

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    async def run(self, ctx):
        return PipelineResult.reply(GREETING + self.suffix)


def build(suffix: str) -> Desk:
    return Desk(suffix)
"""


def _project(tmp_path: Path) -> tuple[Path, str]:
    package = f"agents_{uuid.uuid4().hex[:8]}"  # a fresh name: sys.modules keeps imports
    folder = tmp_path / "conf" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("", "utf-8")
    (folder / "wording.py").write_text("GREETING = 'Hello'\n", "utf-8")
    (folder / "desk.py").write_text(textwrap.dedent(PIPELINE.format(package=package)), "utf-8")
    return tmp_path / "conf", package


async def test_a_module_beside_the_config_file_is_loaded_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, package = _project(tmp_path)
    body = base()
    pipeline = {"kind": "python", "factory": f"{package}.desk:build", "options": {"suffix": "!"}}
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = pipeline
    path = write(conf, body)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the kind adds the folder; undo it
    loaded = load_config(path)
    async with httpx.AsyncClient() as http:
        agents = build_agents(loaded, ToolBackends(http, demo_tools()))
    pipeline_obj = agents.get("acme", "support").pipeline
    assert type(pipeline_obj).__name__ == "Desk"
    assert pipeline_obj.suffix == "!"
    assert str(conf.resolve()) in sys.path


def test_the_module_file_counts_in_the_configuration_version(tmp_path: Path) -> None:
    conf, package = _project(tmp_path)
    body = base()
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = {
        "kind": "python",
        "factory": f"{package}.desk:build",
    }
    path = write(conf, body)
    first = load_config(path).version
    desk = conf / package / "desk.py"
    desk.write_text(desk.read_text("utf-8") + "\n# changed\n", "utf-8")
    assert load_config(path).version != first


async def test_a_module_found_nowhere_names_the_field(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = {
        "kind": "python",
        "factory": "no_such_module_here.desk:build",
    }
    loaded = load_config(write(tmp_path, body))
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError, match=r"support\.pipeline\.factory: no_such_module_here"):
            build_agents(loaded, ToolBackends(http, demo_tools()))


async def test_a_module_shadowed_by_an_installed_one_is_an_error_that_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "json.py").write_text("def build(): ...\n", "utf-8")  # the stdlib has json
    body = base()
    body["tenants"]["acme"]["agents"]["support"]["pipeline"] = {
        "kind": "python",
        "factory": "json:build",
    }
    monkeypatch.setattr(sys, "path", list(sys.path))
    loaded = load_config(write(tmp_path, body))
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError, match="json beside the configuration file is shadowed"):
            build_agents(loaded, ToolBackends(http, demo_tools()))
