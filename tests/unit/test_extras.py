"""The libraries only some deployments need are extras: importing what needs one without it
fails with an error that names the extra to install (each run in a fresh interpreter with
the library blocked, as if it were not installed)."""

import importlib
import subprocess
import sys

import pytest

GUARDS = [
    ("psycopg", "acf.adapters.postgres", "postgres"),
    ("psycopg_pool", "acf.adapters.postgres", "postgres"),
    ("redis", "acf.adapters.redis", "redis"),
    ("aiosmtplib", "acf.channels.email.outbound", "email"),
]


def run_without(blocked: list[str], code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter where importing any of ``blocked`` fails."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("library", "module", "extra"), GUARDS)
def test_a_missing_library_names_its_extra(library: str, module: str, extra: str) -> None:
    importlib.import_module(module)  # installed: it imports
    done = run_without([library], f"import {module}")
    assert done.returncode == 1
    assert f"pip install 'acf[{extra}]'" in done.stderr.splitlines()[-1]


def test_the_otlp_exporter_names_the_otel_extra() -> None:
    done = run_without(
        ["opentelemetry.exporter.otlp.proto.http.trace_exporter"],
        "from acf.observability.tracing import configure_tracing\n"
        "try:\n"
        "    configure_tracing('otlp')\n"
        "except ValueError as exc:\n"
        "    print(exc)\n",
    )
    assert done.returncode == 0, done.stderr
    assert "tracing exporter otlp" in done.stdout
    assert "pip install 'acf[otel]'" in done.stdout
