"""The public surface: ``acf`` for pipeline and tool authors, ``acf.testing`` for their tests.

Each list is pinned: adding or removing a public name is a decision this test makes visible.
"""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = {
    "acf": [
        "AgentBinding",
        "AgentSettings",
        "Button",
        "DedupeScope",
        "FailedCall",
        "InDoubt",
        "InboundMessage",
        "Outcome",
        "OutcomeUnknown",
        "PendingInput",
        "Pipeline",
        "PipelineResult",
        "Reconciled",
        "ReplySegment",
        "SideEffectPolicy",
        "SupersedeDecision",
        "SupersedeHook",
        "Tool",
        "ToolCall",
        "ToolCaller",
        "ToolRegistry",
        "ToolResult",
        "ToolSpec",
        "TurnContext",
        "__version__",
    ],
    "acf.testing": [
        "Answer",
        "CutStream",
        "FakeAgentService",
        "FakeOpenAI",
        "FakeRequest",
        "FakeToolCall",
        "Harness",
        "HarnessOptions",
        "HttpError",
        "RecordingChannel",
        "Script",
        "ScriptedAnswer",
        "ScriptedCall",
        "ScriptedModel",
        "ScriptedPipeline",
        "ToolBackend",
        "VirtualClock",
        "answer_by_model",
    ],
}

HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "redis", "httpx")
"""What ``import acf`` must not load: a pipeline's module imports acf cheaply."""
INNER = ("acf.adapters", "acf.service", "acf.entrypoints", "acf.bootstrap", "acf.config")


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_each_public_module_exports_exactly_its_pinned_names(module: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__all__ == PUBLIC[module]
    missing = [name for name in imported.__all__ if not hasattr(imported, name)]
    assert missing == []


def test_importing_acf_loads_no_web_framework_database_or_adapter() -> None:
    probe = "import sys, acf; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    inner = [m for m in loaded if m.startswith(INNER)]
    assert (heavy, inner) == ([], [])


def test_the_guide_shows_the_type_checked_example_verbatim() -> None:
    guide = (ROOT / "docs" / "pipelines.md").read_text(encoding="utf-8")
    example = (ROOT / "tests" / "typing" / "test_pipeline_example.py").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", guide, flags=re.DOTALL | re.MULTILINE)
    assert example in blocks
