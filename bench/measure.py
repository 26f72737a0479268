"""Timing helpers: percentiles, a pool of concurrent clients, a keep-alive-aware HTTP client."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class Run:
    """Latencies (seconds) of bounded work done by ``clients`` concurrent clients."""

    clients: int
    latencies: list[float]
    wall_s: float
    items_per_request: int
    errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def events_per_s(self) -> float:
        return self.requests * self.items_per_request / self.wall_s if self.wall_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "requests": self.requests,
            "events_per_s": round(self.events_per_s, 1),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(self.latencies, 99) * 1000, 2),
            "wall_s": round(self.wall_s, 2),
            "errors": self.errors,
        }


def run_clients(
    *,
    clients: int,
    items: Sequence[Any],
    make_client: Callable[[], Callable[[Any], None]],
    items_per_request: int = 1,
    on_done: Callable[[], object] | None = None,
) -> Run:
    """Send ``items`` through ``clients`` threads (each with its own connection), timing each call."""
    lock = threading.Lock()
    cursor = iter(items)
    latencies: list[float] = []
    errors: list[BaseException] = []
    workers = [make_client() for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def serve(call: Callable[[Any], None]) -> None:
        start.wait()
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            began = time.perf_counter()
            try:
                call(item)
            except Exception as exc:
                with lock:
                    errors.append(exc)
                continue
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
            if on_done is not None:
                on_done()

    threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors and not latencies:
        raise RuntimeError(f"every request failed, first error: {errors[0]!r}")
    return Run(
        clients=clients, latencies=latencies, wall_s=wall, items_per_request=items_per_request, errors=len(errors)
    )


class HttpError(RuntimeError):
    pass


class Client:
    """One HTTP/1.1 connection to the app (gunicorn's sync workers close it; it reopens by itself)."""

    def __init__(self, port: int, api_key: str | None, *, cookie: str | None = None) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        if cookie:
            self.headers["Cookie"] = cookie

    def request(self, method: str, path: str, body: bytes | None = None, expect: int = 200) -> bytes:
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        if response.status != expect:
            raise HttpError(f"{method} {path} -> {response.status}: {data[:300]!r}")
        return data

    def post_json(self, path: str, body: bytes, expect: int = 200) -> Any:
        return json.loads(self.request("POST", path, body, expect))

    def get(self, path: str) -> bytes:
        return self.request("GET", path)

    def close(self) -> None:
        self.conn.close()


def timed(call: Callable[[], Any], repeat: int, budget_s: float = 90.0, at_least: int = 5) -> list[float]:
    """Latencies of ``repeat`` sequential calls, stopping early (after ``at_least``) once the budget is spent."""
    latencies: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - began)
        if len(latencies) >= at_least and time.perf_counter() > deadline:
            break
    return latencies


def p50_p99_ms(latencies: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "n": len(latencies),
    }


def seconds_until(check: Callable[..., Any], *args: Any, timeout: float = 30.0) -> tuple[float, Any]:
    """Seconds from now until ``check(*args)`` answers something true (polled every 5 ms), and
    that answer; ``(timeout, None)`` when it never does within ``timeout`` seconds."""
    began = time.perf_counter()
    deadline = began + timeout
    while True:
        answer = check(*args)
        if answer:
            return time.perf_counter() - began, answer
        if time.perf_counter() > deadline:
            return timeout, None
        time.sleep(0.005)


def app_vs_raw(app_times: Sequence[float], raw_times: Sequence[float]) -> dict[str, Any]:
    """Each side's runs, their medians and the app / raw ratio, rounded as the results print them."""
    app_s, raw_s = statistics.median(app_times), statistics.median(raw_times)
    return {
        "app_runs_s": [round(t, 3) for t in app_times],
        "raw_runs_s": [round(t, 3) for t in raw_times],
        "app_s": round(app_s, 3),
        "raw_s": round(raw_s, 3),
        "ratio": round(app_s / raw_s, 2) if raw_s else None,
    }


def settle(env: Any, timeout: float = 120) -> float:
    """Wait (at most ``timeout``) until the bench's broker queue is empty and no contact waits
    for its refresh: a figure then starts without the worker still refreshing the previous
    one's contacts beside it. Returns the seconds waited."""
    import psycopg
    import redis

    began = time.monotonic()
    broker = redis.Redis.from_url(env.redis_url)
    try:
        with psycopg.connect(env.psycopg_dsn, autocommit=True) as conn:
            while time.monotonic() - began < timeout:
                row = conn.execute("SELECT EXISTS (SELECT 1 FROM contacts_pendingcontactrefresh)").fetchone()
                if not broker.llen(env.queue) and not (row and row[0]):
                    break
                time.sleep(0.1)
    finally:
        broker.close()
    return time.monotonic() - began
