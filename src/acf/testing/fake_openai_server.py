"""``python -m acf.testing.fake_openai_server``: ``FakeOpenAI`` as a process, answering
every request with the same text (``--answer``) at the pace asked for. It prints its base
URL, then serves until interrupted. For tests and local trials only."""

import argparse
import asyncio
import contextlib

from acf.testing.fake_openai import FakeOpenAI
from acf.testing.fake_openai_script import Answer


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeOpenAI(
        host=args.host,
        port=args.port,
        ttft_ms=args.ttft_ms,
        tokens_per_s=args.tokens_per_s,
        responder=lambda _request: Answer(args.answer),
    )
    async with fake:
        print(fake.base_url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m acf.testing.fake_openai_server",
        description="A fake OpenAI-compatible chat-completions server (for tests only).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--ttft-ms", type=int, default=0, help="time to first token")
    parser.add_argument("--tokens-per-s", type=float, default=None, help="default: no pacing")
    parser.add_argument("--answer", default="OK.", help="what every request is answered")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it
        asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
