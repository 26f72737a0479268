"""API rate limits per key: ``API_RATE_LIMIT`` requests per window, counted across every web
process.

A fixed window (one second for ``300/s``): a request adds one to its key's counter for the
current window and is refused with 429 once the counter passes the limit, until the window ends.

- With ``REDIS_URL``: ``INCR`` and ``PEXPIRE`` of one key per key and window, pipelined into one
  round trip. If Redis cannot be reached the request goes through unlimited (ingest keeps
  working while Redis is down, as it does for the broker) and Redis is tried again after
  ``REDIS_RETRY_SECONDS``.
- Without (the embedded mode): one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on the
  key's row of ``ApiKeyRateWindow`` (an unlogged table on PostgreSQL, so the count's commit
  waits for no disk flush).

Every limited response carries the fields of draft-ietf-httpapi-ratelimit-headers-06, in their
separate form: ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until
the window ends) and ``RateLimit-Policy`` (``300;w=1``); a 429 adds ``Retry-After``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from .models import ApiKey, ApiKeyRateWindow

logger = logging.getLogger(__name__)

WINDOWS = {"s": 1, "m": 60, "h": 3600}
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")
REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Rate:
    requests: int
    window_seconds: int

    def __str__(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour"}[self.window_seconds]
        return f"{self.requests} requests per {unit}"


@functools.lru_cache(maxsize=8)
def parse_rate(text: str) -> Rate | None:
    """``"300/s"``, ``"10000/m"``, ``"50000/h"``; ``"0"`` or ``"off"`` for no limit."""
    if text.strip().lower() in ("0", "off", "none", ""):
        return None
    match = RATE_PATTERN.match(text)
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(f"API_RATE_LIMIT must look like 300/s, 10000/m or 50000/h (or off), not {text!r}.")
    return Rate(requests=int(match.group(1)), window_seconds=WINDOWS[match.group(2)])


@dataclass(frozen=True)
class Usage:
    """Where a key stands in its current window, just after this request was counted."""

    rate: Rate
    count: int
    reset_seconds: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.rate.requests

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.rate.requests),
            "RateLimit-Remaining": str(max(0, self.rate.requests - self.count)),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.rate.requests};w={self.rate.window_seconds}",
        }


def api_key_hit(*, api_key: ApiKey) -> Usage | None:
    """Count one request of ``api_key``; None when there is no limit or Redis is out of reach."""
    rate = parse_rate(settings.API_RATE_LIMIT)
    if rate is None:
        return None
    window_ms = rate.window_seconds * 1000
    now_ms = int(time.time() * 1000)
    window = now_ms // window_ms
    # At least 1 s: a client told 0 would retry at once.
    reset_seconds = max(1, math.ceil(((window + 1) * window_ms - now_ms) / 1000))
    count = _redis_count(api_key, window, window_ms) if settings.REDIS_URL else _database_count(api_key, window)
    return None if count is None else Usage(rate=rate, count=count, reset_seconds=reset_seconds)


_redis_retry_at = 0.0


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _redis_count(api_key: ApiKey, window: int, window_ms: int) -> int | None:
    global _redis_retry_at
    if time.monotonic() < _redis_retry_at:
        return None
    # The prefix (random per key) keeps counters apart when ids are reused (another database).
    key = f"ratelimit:{api_key.pk}:{api_key.prefix}:{window}"
    try:
        pipe = _redis_client(settings.REDIS_URL).pipeline(transaction=False)
        pipe.incr(key)
        pipe.pexpire(key, window_ms + 1000)
        count, _ = pipe.execute()
    except redis.RedisError:
        _redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        logger.warning("API rate limit not counted: Redis unreachable; retrying in %ss", REDIS_RETRY_SECONDS)
        return None
    return int(count)


def _database_count(api_key: ApiKey, window: int) -> int:
    table = connection.ops.quote_name(ApiKeyRateWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (api_key_id, window_number, count) VALUES (%s, %s, 1) "
            f"ON CONFLICT (api_key_id) DO UPDATE SET "
            f"count = CASE WHEN {table}.window_number = excluded.window_number THEN {table}.count + 1 ELSE 1 END, "
            f"window_number = excluded.window_number "
            f"RETURNING count",
            [api_key.pk, window],
        )
        return int(cursor.fetchone()[0])
