"""What the API rate limiter costs one request: ``python -m bench.ratelimit_overhead [--rounds N]``.

In-process (no HTTP server): a cheap authenticated GET (``segments.templates``) through Django's
test client, with ``API_RATE_LIMIT`` off, counted in Redis (``REDIS_URL``) and counted in the
database, rounds interleaved so that the machine's noise falls on all three alike; plus the
counting call alone. Needs ``DATABASE_URL`` on a database whose name contains ``bench`` (it is
migrated, a workspace and key are created in it) and ``REDIS_URL``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=200, help="requests per round and mode")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "events_platform.settings")
    os.environ.setdefault("DEBUG", "1")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from events_platform.workspaces import ratelimit
    from events_platform.workspaces.models import Workspace
    from events_platform.workspaces.services import api_key_create, workspace_create

    if "bench" not in settings.DATABASES["default"]["NAME"] or not settings.REDIS_URL:
        raise SystemExit("needs DATABASE_URL on a *bench* database and REDIS_URL")
    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.filter(pk="limiter").first() or workspace_create(workspace_id="limiter", name="L")
    issued = api_key_create(workspace=workspace, name="overhead")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    url = "/api/segments.templates?workspace_id=limiter"
    redis_url = settings.REDIS_URL
    modes = {"off": ("off", redis_url), "redis": ("1000000/s", redis_url), "database": ("1000000/s", "")}
    per_request: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode, (rate, url_for_redis) in modes.items():
            settings.API_RATE_LIMIT, settings.REDIS_URL = rate, url_for_redis
            started = time.perf_counter()
            for _ in range(args.requests):
                response = client.get(url)
                assert response.status_code == 200, response.content
            per_request[mode].append((time.perf_counter() - started) / args.requests * 1e6)
    # The counting call alone: wall time, and this process's CPU time (what a web worker pays
    # whatever the machine's load; the rest of the wall time is waiting for Redis or the database).
    alone: dict[str, tuple[float, float, float]] = {}
    for mode in ("redis", "database"):
        settings.API_RATE_LIMIT, settings.REDIS_URL = modes[mode]
        wall, cpu = [], []
        for _ in range(args.rounds):
            started, started_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                ratelimit.api_key_hit(api_key=issued.api_key)
            wall.append((time.perf_counter() - started) / args.requests * 1e6)
            cpu.append((time.process_time() - started_cpu) / args.requests * 1e6)
        alone[mode] = (min(wall), statistics.median(wall), statistics.median(cpu))
    print(f"GET segments.templates, {args.rounds} interleaved rounds x {args.requests} requests (microseconds):")
    off = statistics.median(per_request["off"])
    for mode, samples in per_request.items():
        median = statistics.median(samples)
        print(f"  {mode:9} median {median:6.0f} (+{median - off:5.0f} vs off), best round {min(samples):6.0f}")
    print("counting call alone (microseconds): best round / median wall, median CPU of this process")
    for mode, (best, typical, cpu_us) in alone.items():
        print(f"  {mode:9} {best:5.0f} / {typical:5.0f}, CPU {cpu_us:5.0f}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
