"""One way to open a Redis client: short timeouts, no hidden retries.

redis-py retries a failed command itself (10 times, with backoff, by default), which would
turn an outage into seconds of waiting per call; the adapters here fall back at once
instead and try Redis again later, so the client fails fast.
"""

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

DEFAULT_TIMEOUT_S = 0.5


def redis_url(url: str) -> str:
    """A redis-py URL from one that may carry the ``limits`` library's ``async+`` prefix."""
    return url.removeprefix("async+")


def fail_fast_pool(
    url: str, timeout_s: float = DEFAULT_TIMEOUT_S, *, decode_responses: bool = True
) -> ConnectionPool:
    """A connection pool whose commands give up after ``timeout_s`` (connect, then reply)."""
    return ConnectionPool.from_url(
        redis_url(url),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
        decode_responses=decode_responses,
    )


def fail_fast_client(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Redis:
    """A client owning a :func:`fail_fast_pool`; ``await client.aclose()`` closes both."""
    return Redis.from_pool(fail_fast_pool(url, timeout_s))


def describe(exc: BaseException) -> str:
    """For logs: redis-py's ``repr`` of its errors drops the message."""
    return f"{type(exc).__name__}: {exc}"
