"""No secret value, signature or credential reaches the log of a real `acf serve` process,
and no line is longer than 16 KiB, when errors happen with known secrets configured
(``${ENV}`` references): the embedded process, and the distributed API and worker over
PostgreSQL. The errors are real ones: the providers' APIs answer 5xx or garbage to replies
and button answers (the worker, and the API's ``answerCallbackQuery``, log them with the
token in hand), and the store loses its ``messages`` table under signed webhooks of every
provider (an unexpected 500 in the request handler, whose frames hold the app secret, the
secret token and the signed headers)."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest
import yaml

from acf.adapters.postgres.store import libpq_url
from acf.observability.redaction import MAX_LINE_BYTES
from tests.channels.fake_graph import FakeGraph, fake_graph
from tests.channels.fake_telegram import FakeTelegram, fake_telegram
from tests.channels.fake_twilio import FakeTwilio, fake_twilio
from tests.channels.payloads import PHONE_NUMBER_ID, envelope, text, value
from tests.channels.payloads import signed as meta_signed
from tests.channels.telegram_updates import button_press, text_update
from tests.channels.twilio_payloads import ACCOUNT_SID, OUR_NUMBER, sid, sms
from tests.channels.twilio_payloads import signed as twilio_signed
from tests.http.conftest import config, free_port
from tests.integration.services import require_postgres, temporary_database

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]
PUBLIC = "https://acf.example.com"
FAST = {"mode": "adaptive", "window_ms": 300, "min_window_ms": 100, "max_window_ms": 1000}
SECRETS = {
    "WA_APP_SECRET": "wa-app-secret-Zq81xK",
    "WA_VERIFY_TOKEN": "wa-verify-token-Pm42Jd",
    "WA_ACCESS_TOKEN": "EAAG-access-token-Hn27Lw",
    "TG_BOT_TOKEN": "987654321:AAH-known-bot-token-Vb63Qs9",
    "TG_SECRET_TOKEN": "tg-secret-token-Kd95Yr",
    "TWILIO_AUTH_TOKEN": "twilio-auth-token-Tr58Gm",
}


class Fakes:
    def __init__(self, graph: FakeGraph, telegram: FakeTelegram, twilio: FakeTwilio) -> None:
        self.graph, self.telegram, self.twilio = graph, telegram, twilio


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with fake_graph() as graph, fake_telegram() as telegram, fake_twilio() as twilio:
        down = (503, {"error": {"code": 2, "message": "Service temporarily unavailable"}})
        graph.answers.extend([down] * 50)
        for _ in range(50):
            telegram.fail_next("sendMessage", 200, b"<html>garbage</html>")
            telegram.fail_next("answerCallbackQuery", 502, b"\x00not json")
        yield Fakes(graph, telegram, twilio)


def write_config(path: Path, fakes: Fakes) -> Path:
    body = config()
    acme: dict[str, Any] = body["tenants"]["acme"]  # type: ignore[index]
    acme["whatsapp"] = {
        "agent": "support",
        "phone_number_id": PHONE_NUMBER_ID,
        "app_secret": "${WA_APP_SECRET}",
        "verify_token": "${WA_VERIFY_TOKEN}",
        "access_token": "${WA_ACCESS_TOKEN}",
        "api_base_url": fakes.graph.url,
    }
    acme["telegram"] = {
        "agent": "support",
        "bot_token": "${TG_BOT_TOKEN}",
        "secret_token": "${TG_SECRET_TOKEN}",
        "api_base_url": fakes.telegram.url,
    }
    acme["twilio"] = {
        "agent": "support",
        "account_sid": ACCOUNT_SID,
        "auth_token": "${TWILIO_AUTH_TOKEN}",
        "from_number": OUR_NUMBER,
        "api_base_url": fakes.twilio.url,
        "public_url": PUBLIC,
    }
    acme["channels"] |= {"whatsapp": FAST, "telegram": FAST, "sms": FAST}
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def env(**extra: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("ACF_")}
    return {**kept, **SECRETS, **extra}


def start(args: list[str], environ: dict[str, str], stderr: IO[str]) -> subprocess.Popen[str]:
    # stderr goes to a file: a pipe nobody reads would stop the process at 64 KiB.
    return subprocess.Popen(
        [*ACF, *args], env=environ, stdout=subprocess.PIPE, stderr=stderr, text=True
    )


def wait_for_line(proc: subprocess.Popen[str], wanted: str) -> None:
    """Read the process's stdout until ``wanted`` (its own readiness announcement)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if wanted in line:
            return
    raise AssertionError(f"the process ended before {wanted!r}: {''.join(seen)}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


class Webhooks:
    """Signed webhooks of every provider; ``sent`` keeps every credential header sent."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.sent: list[str] = []
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def whatsapp(self) -> int:
        n = self._next()
        at = int(time.time())
        raw, signature = meta_signed(
            envelope(value([text(f"wamid.log-{n}", "hello", at=at)])), SECRETS["WA_APP_SECRET"]
        )
        self.sent.append(signature)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        return self._post("/v1/channels/whatsapp/acme", raw, headers)

    def telegram(self, update: dict[str, Any] | None = None) -> int:
        n = self._next()
        raw = httpx.Request("POST", "/", json=update or text_update(1000 + n, "hello")).content
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": SECRETS["TG_SECRET_TOKEN"],
        }
        return self._post("/v1/channels/telegram/acme", raw, headers)

    def twilio(self) -> int:
        n = self._next()
        path = "/v1/channels/twilio/acme"
        raw, signature = twilio_signed(
            f"{PUBLIC}{path}", sms(sid(n), "hello"), SECRETS["TWILIO_AUTH_TOKEN"]
        )
        self.sent.append(signature)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
            "X-Twilio-Signature": signature,
        }
        return self._post(path, raw.encode(), headers)

    def _post(self, path: str, raw: bytes, headers: dict[str, str]) -> int:
        answer = httpx.post(f"{self.base}{path}", content=raw, headers=headers, timeout=30)
        return answer.status_code


def sends(telegram: FakeTelegram) -> int:
    return sum(call.method == "sendMessage" for call in telegram.calls)


def provoke(hooks: Webhooks, fakes: Fakes, break_store: Callable[[], None]) -> None:
    """Errors of every kind reachable from outside, with the secrets in use."""
    assert hooks.whatsapp() == 200
    assert hooks.telegram() == 200
    assert hooks.telegram(button_press(999, "yes")) == 200  # answerCallbackQuery fails
    assert hooks.twilio() == 200
    # The worker answers; the Graph API is down and the Bot API answers garbage. A second
    # try of each reply means the first failure was logged.
    deadline = time.monotonic() + 120
    while not (len(fakes.graph.received) >= 2 and sends(fakes.telegram) >= 2):
        assert time.monotonic() < deadline, "the replies were not tried twice"
        time.sleep(0.1)
    break_store()
    assert hooks.whatsapp() == 500
    assert hooks.telegram() == 500
    assert hooks.twilio() == 500


def assert_clean(log: str, hooks: Webhooks, expected: tuple[str, ...]) -> None:
    for event in expected:  # the errors were logged: the check below is not vacuous
        assert event in log, f"{event} not in the log"
    leaked = [name for name, secret in SECRETS.items() if secret in log]
    assert not leaked, f"secrets in the log: {leaked}"
    for credential in hooks.sent:
        assert credential not in log
        digest = credential.removeprefix("sha256=")
        assert digest not in log
    long_lines = [len(line.encode()) for line in log.splitlines()]
    assert max(long_lines, default=0) <= MAX_LINE_BYTES, f"a line of {max(long_lines)} bytes"


def test_the_embedded_process_logs_no_secret(tmp_path: Path, fakes: Fakes) -> None:
    cfg = write_config(tmp_path / "acf.yaml", fakes)
    data, port = tmp_path / "data", free_port()
    with (tmp_path / "stderr.log").open("w") as err:
        proc = start(
            ["serve", "--config", str(cfg), "--data-dir", str(data), "--port", str(port)],
            env(ACF_LOG_LEVEL="INFO"),
            err,
        )
        try:
            wait_for_line(proc, "acf is serving")

            def break_store() -> None:
                with sqlite3.connect(data / "acf.db", timeout=30) as db:
                    db.execute("ALTER TABLE messages RENAME TO messages_gone")

            hooks = Webhooks(f"http://127.0.0.1:{port}")
            provoke(hooks, fakes, break_store)
        finally:
            stop(proc)
    log = (tmp_path / "stderr.log").read_text()
    assert_clean(
        log, hooks, ("http.unexpected_error", "delivery.retry", "telegram.callback_answer_failed")
    )


@pytest.fixture
def database() -> Iterator[str]:
    require_postgres()
    with temporary_database() as url:
        yield libpq_url(url)


def test_the_api_and_worker_processes_log_no_secret(
    tmp_path: Path, fakes: Fakes, database: str
) -> None:
    cfg = write_config(tmp_path / "acf.yaml", fakes)
    environ = env(ACF_DATABASE_URL=database, ACF_LOG_LEVEL="INFO", ACF_CONFIG=str(cfg))
    upgraded = subprocess.run(
        [*ACF, "db", "upgrade"], env=environ, capture_output=True, text=True, timeout=120
    )
    assert upgraded.returncode == 0, upgraded.stderr
    port = free_port()
    with (tmp_path / "api.log").open("w") as api_err, (tmp_path / "worker.log").open("w") as w_err:
        api = start(["serve", "--role", "api", "--port", str(port)], environ, api_err)
        worker = start(["serve", "--role", "worker"], environ, w_err)
        try:
            wait_for_line(api, "acf is serving")
            wait_for_line(worker, "acf worker running")

            def break_store() -> None:
                with psycopg.connect(database, autocommit=True) as db:
                    db.execute("ALTER TABLE messages RENAME TO messages_gone")

            hooks = Webhooks(f"http://127.0.0.1:{port}")
            provoke(hooks, fakes, break_store)
        finally:
            stop(api)
            stop(worker)
    api_log = (tmp_path / "api.log").read_text()
    worker_log = (tmp_path / "worker.log").read_text()
    assert_clean(api_log, hooks, ("http.unexpected_error", "telegram.callback_answer_failed"))
    assert_clean(worker_log, hooks, ("delivery.retry",))
    assert re.search(r'"level": "(warning|error)"', worker_log)
