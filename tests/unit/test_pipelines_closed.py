"""A pipeline holding connections (an LLM agent's model client) is closed when the service
stops, once, after its runtime; one serving two agents is closed once."""

from pathlib import Path

import yaml

from acf import PipelineResult, TurnContext
from acf.bootstrap import open_service
from acf.bootstrap.settings import read_settings
from acf.config.load import load_config

CLOSED: list[str] = []


class Holding:
    name, version = "holding", "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        return PipelineResult.reply("hi")

    async def aclose(self) -> None:
        CLOSED.append(self.name)


SHARED = Holding()


def build() -> Holding:
    return SHARED


async def test_the_service_closes_its_pipelines_once(tmp_path: Path) -> None:
    pipeline = {"kind": "python", "factory": f"{__name__}:build"}
    agents = {"a": {"pipeline": pipeline}, "b": {"pipeline": pipeline}}
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "tenants": {"t": {"agents": agents}}}))
    service = await open_service(
        load_config(path), read_settings({"data_dir": tmp_path / "data"}, environ={})
    )
    await service.start()
    assert service.agents.pipelines() == [SHARED]
    CLOSED.clear()
    await service.close()
    assert CLOSED == ["holding"]
