"""Test support that needs real processes: a Celery worker on Redis bound to the test database.

Used by the tests that prove background work runs through a real broker and worker (not
in-process). Needs PostgreSQL (the worker process must see the test database) and REDIS_URL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from events_platform.celery import app as celery_app

BASE_DIR = Path(settings.BASE_DIR)


def worker_unavailable_reason() -> str | None:
    """Why a real worker cannot run here, or None when it can."""
    if not settings.REDIS_URL:
        return "needs REDIS_URL (a Redis broker)"
    if connection.vendor != "postgresql":
        return "needs PostgreSQL (the worker process must share the test database)"
    return None


def _database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def succeeded(self, task_name: str) -> int:
        """How many runs of this task the worker has logged as succeeded."""
        return sum(1 for line in list(self.log) if task_name in line and " succeeded in " in line)


@contextmanager
def celery_worker(
    *,
    ready_timeout: float = 60.0,
    queue: str | None = None,
    env: dict[str, str] | None = None,
    beat: bool = False,
    broker_url: str | None = None,
) -> Iterator[WorkerProcess]:
    """Run ``celery worker`` in a subprocess on a private queue; tasks sent meanwhile go to it.

    Like a plain ``celery -A events_platform worker`` it consumes every queue the app uses (the
    default one and the webhooks one derived from it). Workers started with the same ``queue``
    share their work; ``env`` adds settings for the worker process (or replaces these defaults).
    ``beat`` runs Celery beat inside the worker (``-B``: the periodic sweeps, as a production beat
    runs them);
    ``broker_url`` puts the worker on another Redis than ``REDIS_URL`` (a broker a test stops).
    """
    queue = queue or f"test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": broker_url or settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_QUEUE": queue,
        "CONN_MAX_AGE": "0",
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "events_platform", "worker",
        "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel=INFO",
    ]  # fmt: skip
    schedule_dir = tempfile.mkdtemp(prefix="celerybeat-") if beat else None
    if schedule_dir is not None:
        command += ["-B", f"--schedule={schedule_dir}/schedule"]
    proc = subprocess.Popen(  # noqa: S603 (fixed command line)
        command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    worker = WorkerProcess(process=proc)
    lines = worker.log
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    try:
        deadline = time.monotonic() + ready_timeout
        while not ready.wait(0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start:\n" + "".join(lines[-40:]))
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_default_queue = queue
        yield worker
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if schedule_dir is not None:
            shutil.rmtree(schedule_dir, ignore_errors=True)


def migrate_to(targets: list[tuple[str, str]]) -> MigrationExecutor:
    """Migrate the test database to ``targets`` (forwards or backwards); a fresh executor after."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def migrate_to_latest() -> None:
    migrate_to(MigrationExecutor(connection).loader.graph.leaf_nodes())
