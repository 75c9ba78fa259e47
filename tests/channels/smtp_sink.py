"""A real SMTP server on loopback (aiosmtpd, in its own thread): records each accepted mail
and answers the scripted replies a test sets for RCPT or DATA."""

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SmtpSink:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.script: list[tuple[str, str]] = []
        """``(stage, reply)`` for the next commands: stage ``RCPT`` or ``DATA``, e.g.
        ``("RCPT", "550 5.1.1 No such user")``; consumed in order, then 250."""
        self.logins: list[str] = []
        self._lock = threading.Lock()

    def _scripted(self, stage: str) -> str | None:
        with self._lock:
            if self.script and self.script[0][0] == stage:
                return self.script.pop(0)[1]
        return None

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        answer = self._scripted("RCPT")
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        answer = self._scripted("DATA")
        if answer is not None:
            return answer
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        with self._lock:
            self.mails.append(mail)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Message accepted for delivery"

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.mails)


@contextmanager
def smtp_sink(
    port: int | None = None, login: tuple[str, str] | None = None
) -> Iterator[tuple[SmtpSink, int]]:
    """A started sink and its port (``port``: reuse one, to bring a server back up).
    With ``login``, AUTH is offered (over plain TCP: loopback only), only that user and
    password pass, and each attempt's user is recorded in ``logins``."""
    sink = SmtpSink()
    chosen = port or free_port()
    auth: dict[str, Any] = {}
    if login is not None:

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
            assert isinstance(data, LoginPassword)
            sink.logins.append(data.login.decode())
            ok = (data.login, data.password) == tuple(map(str.encode, login))
            return AuthResult(success=ok, handled=False)

        auth = {"authenticator": authenticator, "auth_require_tls": False}
    controller = Controller(sink, hostname="127.0.0.1", port=chosen, **auth)
    controller.start()
    try:
        yield sink, chosen
    finally:
        controller.stop()
