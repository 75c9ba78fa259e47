"""The log redaction: secret fields masked at any depth, registered secret values and
credentials by their shape masked inside any string (tracebacks included), and no line
over its bound; tracebacks without locals unless asked, and redacted when asked."""

import json
import logging

import pytest
import structlog
from pydantic import BaseModel, ValidationError

from acf.config.secrets import resolve_secrets
from acf.logging import configure_logging
from acf.observability.redaction import (
    MASK,
    MAX_LINE_BYTES,
    MAX_VALUE_CHARS,
    error_text,
    is_secret_name,
    redact_text,
    redact_value,
    render_bounded,
    secrets_pattern,
)

SECRET = "s3cr3t-Value-9Qz"
BOT_TOKEN = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCUtE6xs"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("app_secret", True),
        ("secret_token", True),
        ("bot_token", True),
        ("access_token", True),
        ("token", True),
        ("auth_token", True),
        ("password", True),
        ("smtp_password", True),
        ("api_key", True),
        ("Authorization", True),
        ("X-Hub-Signature-256", True),
        ("x-twilio-signature", True),
        ("X-Telegram-Bot-Api-Secret-Token", True),
        ("signing_key", True),
        ("Cookie", True),
        ("set-cookie", True),
        ("tenant", False),
        ("session_id", False),
        ("max_tokens", False),
        ("error", False),
        ("path", False),
        ("outbox_id", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"boom: {SECRET}!", f"boom: {MASK}!"),
        (f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage", f"/bot{MASK}/sendMessage"),
        (f"token {BOT_TOKEN} refused", f"token {MASK} refused"),
        ("postgresql://acf:hunter2pw@db:5432/acf", f"postgresql://acf:{MASK}@db:5432/acf"),
        ("Authorization: Bearer acf_abcdefghijklmnopqrstuvwxyz012345", f"Bearer {MASK}"),
        ("key acf_abcdefghijklmnopqrstuvwxyz012345 used", f"key acf_{MASK} used"),
        ("{'x-hub-signature-256': 'sha256=00ff'}", f"{{'x-hub-signature-256': '{MASK}'}}"),
        ("(b'x-twilio-signature', b'AbCd+/=')", f"(b'x-twilio-signature', b'{MASK}')"),
        ("GET /?key=acf_short&tenant=acme", f"/?key={MASK}&tenant=acme"),
        ("/whatsapp?hub.verify_token=abc&x=1", f"hub.verify_token={MASK}&x=1"),
        ("sha256=" + "ab" * 32, f"sha256={MASK}"),
        ("nothing secret here, 42 messages", "nothing secret here, 42 messages"),
    ],
)
def test_redact_text(text: str, shown: str) -> None:
    assert shown in redact_text(text, secrets_pattern([SECRET]))


def test_short_values_are_not_registered_and_the_longest_secret_wins() -> None:
    pattern = secrets_pattern(["abc", SECRET, SECRET + "-longer"])
    assert pattern is not None
    assert redact_text(f"abc {SECRET}-longer", pattern) == f"abc {MASK}"
    assert secrets_pattern(["abc", "12345"]) is None


def test_values_are_redacted_at_any_depth() -> None:
    event = {
        "config": {"tenants": {"acme": {"whatsapp": {"app_secret": "x", "agent": "support"}}}},
        "headers": [(b"content-type", b"json"), (b"x-hub-signature-256", b"sha256=1")],
        "items": (f"a {SECRET}", {SECRET: 1}),
        "empty_secret": None,
    }
    shown = redact_value(event, secrets_pattern([SECRET]))
    assert shown["config"]["tenants"]["acme"]["whatsapp"] == {
        "app_secret": MASK,
        "agent": "support",
    }
    assert shown["headers"] == [["content-type", "json"], ["x-hub-signature-256", MASK]]
    assert shown["items"] == [f"a {MASK}", {MASK: 1}]
    assert shown["empty_secret"] is None
    assert SECRET not in json.dumps(shown)


def test_a_long_value_is_cut_and_says_how_much() -> None:
    shown = redact_text("x" * (MAX_VALUE_CHARS + 100), None)
    assert shown.endswith("…[100 chars cut]") and len(shown) < MAX_VALUE_CHARS + 30


@pytest.mark.parametrize(
    "event",
    [
        {"event": "small", "level": "info"},
        {"event": "wide", "a": "x" * 4000, "b": "y" * 4000, "c": "z" * 4000, "d": "w" * 4000},
        {"event": "many", "items": ["x" * 100] * 1000},
        {"event": "deep", "exception": [{"frames": [{"locals": {"v": "é" * 4000}}] * 50}]},
        {"event": "e" * 100_000},
    ],
)
def test_every_line_fits_its_bound_and_stays_json(event: dict[str, object]) -> None:
    line = render_bounded(event)
    assert len(line.encode()) <= MAX_LINE_BYTES
    parsed = json.loads(line)
    if len(json.dumps(event)) > MAX_LINE_BYTES:
        assert "bytes" in parsed["log_line_cut"]
    else:
        assert parsed == event


class _Order(BaseModel):
    quantity: int


def test_error_text_leaves_out_validation_inputs() -> None:
    with pytest.raises(ValidationError) as caught:
        _Order.model_validate({"quantity": SECRET})
    assert SECRET in repr(caught.value)
    text = error_text(caught.value)
    assert SECRET not in text and "quantity" in text
    assert error_text(KeyError("x")) == "KeyError: 'x'"


def _fail_with_secrets_in_hand(resolved: str) -> None:
    app_secret = resolved  # noqa: F841 - a local, as in a webhook handler
    headers = {"X-Hub-Signature-256": "sha256=" + "cd" * 32}  # noqa: F841
    raise RuntimeError(f"could not use {resolved}")


@pytest.mark.parametrize("show_locals", [False, True])
def test_a_logged_traceback_holds_no_resolved_secret(
    show_locals: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACF_TEST_LOG_SECRET", SECRET)
    configure_logging("INFO", show_locals=show_locals)
    resolved = resolve_secrets("${ACF_TEST_LOG_SECRET}")  # registers it
    log = structlog.get_logger("test.redaction")
    try:
        _fail_with_secrets_in_hand(resolved)
    except RuntimeError as exc:
        log.exception("unexpected", error=repr(exc), app_secret=resolved)
        logging.getLogger("test.stdlib").error("stdlib %s", resolved, exc_info=True)
    err = capsys.readouterr().err
    assert "unexpected" in err and f"could not use {MASK}" in err
    assert SECRET not in err and "cd" * 32 not in err
    assert ('"locals"' in err) is show_locals
    configure_logging("INFO")
