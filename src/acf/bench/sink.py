"""The delivery sink of the distributed benchmark: the tenant's ``web_delivery_url``, served
by the benchmark's process, timestamps each reply's arrival and reads the pipeline's marks
carried in its text (``text|started|ended``).
"""

import asyncio
import contextlib
import json
import time

from acf.bench.marks import Marks

SEPARATOR = "|"
"""Between a reply's text and the pipeline's marks (see ``acf.bench.distributed.TimedEcho``)."""

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Sink:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) that timestamps each
    delivered reply and records the pipeline's marks carried in its text."""

    def __init__(self, marks: Marks) -> None:
        self.marks = marks
        self.deliveries = 0
        self.duplicates = 0
        self.unreadable = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length)
                arrived = time.perf_counter()
                writer.write(_OK)
                self._record(body, arrived)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _record(self, body: bytes, arrived: float) -> None:
        self.deliveries += 1
        self.marks.progress.set()  # whatever it is, a waiting measurement looks again
        try:
            reply = str(json.loads(body)["payload"]["text"])
            text, started, ended = reply.rsplit(SEPARATOR, 2)
            start_mark, end_mark = float(started), float(ended)
        except (ValueError, KeyError, TypeError):  # no marks: a failed turn's fallback
            self.unreadable += 1
            self.marks.unexpected += 1
            return
        m = self.marks
        if text in m.delivered:
            self.duplicates += 1
            return
        m.started[text] = start_mark
        m.ended[text] = end_mark
        m.delivered[text] = arrived
        waiter = m.waiters.pop(text, None)
        if waiter is not None:
            waiter.set()
