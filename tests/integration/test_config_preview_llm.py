"""Preview of an LLM agent: recorded completions answer identical requests again; a changed
prompt's requests find none, and the preview refuses to report without a live model, or
asks the one given (``--llm-base-url``: here a fake OpenAI-compatible server)."""

import dataclasses
from pathlib import Path

import httpx
import pytest

from acf.adapters.memory.clock import SystemClock
from acf.bootstrap import ToolBackends, build_agents
from acf.config.load import load_config
from acf.config.versions_source import version_sources
from acf.domain.config_versions import ApplyMode
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.ports.config_versions import PushVersion
from acf.ports.store import Store
from acf.preview.recorded import PreviewError
from acf.preview.replay import PreviewRequest, preview
from acf.testing import FakeOpenAI
from acf.testing.harness import AGENT, TENANT, Harness, HarnessOptions
from acf.testing.model import ScriptedAnswer, ScriptedModel

CONFIG = f"""
version: 1
tenants:
  {TENANT}:
    agents:
      {AGENT}:
        pipeline:
          kind: llm
          model: scripted
          base_url: http://model.invalid/v1
          system_prompt: PROMPT
"""


def config(folder: Path, prompt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "acf.yaml"
    path.write_text(CONFIG.replace("PROMPT", prompt), encoding="utf-8")
    return path


async def push(store: Store, file: Path) -> int:
    source = version_sources(load_config(file))[TENANT]
    op = PushVersion(
        TENANT, source.content_hash, source.source, source.resolved, source.provenance,
        "test", "", None, ApplyMode(source.apply), SystemClock().now_ms(),
    )  # fmt: skip
    return (await store.uow.commit(TENANT, [op])).get(op).version.number


async def test_recorded_completions_answer_again_and_a_new_prompt_needs_a_model(
    tmp_path: Path,
) -> None:
    v1 = config(tmp_path / "v1", "You help customers of a shop.")
    async with httpx.AsyncClient() as client:
        built = build_agents(load_config(v1), ToolBackends(client)).get(TENANT, AGENT)
    pipeline = built.pipeline
    assert isinstance(pipeline, LlmPipeline)
    model = ScriptedModel([ScriptedAnswer("Hi! What can I do?"), ScriptedAnswer("Sure.")])
    pipeline.setup = dataclasses.replace(pipeline.setup, completer=model)
    options = HarnessOptions(pipeline=pipeline, settings=built.settings)
    async with Harness(tmp_path / "data", options) as h:
        await h.send("ana", "hello")
        await h.run_until_idle()
        await h.advance(10_000)
        await h.send("ana", "can you help me?")
        await h.run_until_idle()
        assert h.replies("ana") == ["Hi! What can I do?", "Sure."]
        same = await push(h.store, v1)
        changed = await push(h.store, config(tmp_path / "v2", "You sell shoes."))

        report = await preview(h.store, PreviewRequest(TENANT, same, sessions=5))
        assert report.summary.changed == 0
        assert report.model_reused == 2
        assert report.model_live == 0

        with pytest.raises(PreviewError, match="pass --llm-base-url"):
            await preview(h.store, PreviewRequest(TENANT, changed, sessions=5))

        async with FakeOpenAI(models=("scripted",)) as fake:
            request = PreviewRequest(TENANT, changed, sessions=5, llm_base_url=fake.base_url)
            report = await preview(h.store, request)
            assert fake.completions_requested == 2
        (session,) = report.sessions
        assert [(c.before, c.after) for c in session.changes] == [
            ("Hi! What can I do?", "OK."),
            ("Sure.", "OK."),
        ]
        assert report.model_live == 2
        assert len(model.requests) == 2  # the recording's, none from the previews
