"""The listening socket ``acf serve`` binds itself: accepted connections have Nagle's
algorithm off. With it on, every keep-alive request after the first waited for the
client's delayed ACK (~40 ms on Linux) before the last part of its response left."""

import asyncio
import socket

from acf.entrypoints.cli.serve import _bind


async def test_accepted_connections_are_tcp_nodelay() -> None:
    listener = _bind("127.0.0.1", 0)
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=listener)
    try:
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert await asyncio.wait_for(seen, 5) != 0
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
