"""``python -m acf.testing.fake_agent_service_server``: ``FakeAgentService`` as a process,
answering every execution alike: optionally a thought and a tool, then ``You said:
<text>`` in ``--chunks`` chunks and ``COMPLETE``, at the pace asked for (``--first-event-ms``
before the first event, ``--chunk-ms`` before each later one). It prints its base URL, then
serves until interrupted. Requests are not recorded, so a long load test does not grow it
beyond its executions. For tests and local trials only."""

import argparse
import asyncio
import contextlib
import os

from acf.pipelines.agent_service.protocol import ExecuteRequest
from acf.testing.fake_agent_service import FakeAgentService
from acf.testing.fake_agent_steps import Chunks, Complete, Responder, Step, Think, Tool

API_KEY_ENV = "ACF_FAKE_AGENT_API_KEY"


def responder(chunks: int, think: bool, tool: str | None, tool_ms: int) -> Responder:
    """The script of every execution, as the options describe it."""

    def respond(request: ExecuteRequest, _profile: str) -> list[Step]:
        steps: list[Step] = [Think("Reading the request.")] if think else []
        if tool is not None:
            steps.append(Tool(tool, {"text": request.message.text[:100]}, seconds=tool_ms / 1000))
        return [*steps, Chunks(f"You said: {request.message.text}", parts=chunks), Complete()]

    return respond


async def _serve(args: argparse.Namespace) -> None:
    service = FakeAgentService(
        os.environ.get(API_KEY_ENV) or None,
        heartbeat_s=args.heartbeat_s,
        first_event_s=args.first_event_ms / 1000,
        event_gap_s=args.chunk_ms / 1000,
        host=args.host,
        port=args.port,
        record_requests=False,
    )
    service.script(responder(args.chunks, args.think, args.tool, args.tool_ms))
    async with service:
        print(service.base_url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m acf.testing.fake_agent_service_server",
        description=(
            "A fake agent service speaking acf's agent service protocol (for tests only). "
            f"The API key it requires, if any, is read from ${API_KEY_ENV}."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--first-event-ms", type=int, default=0, help="time to first event")
    parser.add_argument("--chunk-ms", type=int, default=0, help="delay before each later event")
    parser.add_argument("--chunks", type=int, default=3, help="answer chunks per execution")
    parser.add_argument("--think", action="store_true", help="start with a THOUGHT")
    parser.add_argument("--tool", default=None, help="run this tool (no side effect) first")
    parser.add_argument("--tool-ms", type=int, default=0, help="how long the tool runs")
    parser.add_argument("--heartbeat-s", type=float, default=15.0, help="keepalive interval")
    args = parser.parse_args(argv)
    if args.chunks < 1 or min(args.first_event_ms, args.chunk_ms, args.tool_ms) < 0:
        parser.error("--chunks must be >= 1 and the delays >= 0")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
