"""The outbound client (httpx on aiohttp's pool) against raw servers on loopback: every
failure is an ``httpx.HTTPError`` (callers treat those as transient), and a response
httpcore would read is read."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from acf.adapters.outbound_http import outbound_client
from acf.bench.processes import free_port

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(reply: Reply) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            await reply(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = outbound_client(timeout_s=5)
    try:
        yield http
    finally:
        await http.aclose()


def _raw(data: bytes) -> Reply:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return reply


async def _get(client: httpx.AsyncClient, reply: Reply) -> httpx.Response:
    server, url = await _serve(reply)
    try:
        return await client.get(url)
    finally:
        server.close()


async def test_a_response_is_read_with_its_headers_and_body(client: httpx.AsyncClient) -> None:
    big = b"x" * 10_000  # over aiohttp's own 8 KiB line limit, which httpcore does not have
    body = b'{"id": "m1"}'
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + big + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    response = await _get(client, _raw(head + body))
    assert response.status_code == 200
    assert response.json() == {"id": "m1"}
    assert response.headers["x-big"] == big.decode()


@pytest.mark.parametrize(
    "answer",
    [
        b"NOT HTTP AT ALL\r\n\r\n",  # a malformed status line
        b"HTTP/1.1 200 OK\r\nBroken header line\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short",  # closed mid-body
        b"",  # closed without an answer
    ],
    ids=["status-line", "header-line", "cut-body", "no-answer"],
)
async def test_a_broken_answer_is_an_httpx_error(client: httpx.AsyncClient, answer: bytes) -> None:
    with pytest.raises(httpx.HTTPError):
        await _get(client, _raw(answer))


async def test_no_listener_is_a_transport_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.TransportError):
        await client.post(f"http://127.0.0.1:{free_port()}/x", json={"a": 1})


async def test_a_silent_server_times_out_as_an_httpx_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    http = outbound_client(timeout_s=0.3)
    try:
        with pytest.raises(httpx.TimeoutException):
            await _get(http, silent)
    finally:
        await http.aclose()
