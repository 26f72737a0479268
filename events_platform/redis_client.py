"""One Redis client (a connection pool) per process for the small coordination marks that web
processes and workers share (drain and fan-out publish marks). The state lives in Redis, never
in the process; a short timeout keeps a hung Redis from holding a request's after-response work.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings

TIMEOUT_SECONDS = 2.0


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)


def client() -> redis.Redis:
    """The client for ``settings.REDIS_URL`` (which must be set)."""
    return _client(settings.REDIS_URL)
