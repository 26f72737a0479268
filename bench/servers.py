"""The app's production processes for the bench: gunicorn (loopback only) and a Celery worker.

Both run with DEBUG off, on the bench database and Redis DB, the worker on the bench's own
queue. A sampler reads every process's peak RSS (VmHWM) from /proc while they run.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(p) for p in f.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def process_tree(pid: int) -> list[int]:
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(_children(current))
    return tree


@dataclass
class MemorySampler:
    """Peak RSS per process of each named group (a root pid and its descendants)."""

    roots: dict[str, int] = field(default_factory=dict)
    peak_kib: dict[str, dict[int, int]] = field(default_factory=dict)
    peak_total_kib: dict[str, int] = field(default_factory=dict)
    interval: float = 0.25
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, name: str, pid: int) -> None:
        self.roots[name] = pid
        self.peak_kib.setdefault(name, {})
        self.peak_total_kib.setdefault(name, 0)

    def sample(self) -> None:
        for name, root in list(self.roots.items()):
            total = 0
            for pid in process_tree(root):
                rss = _status_kib(pid, "VmRSS")
                hwm = _status_kib(pid, "VmHWM")
                if rss is None or hwm is None:
                    continue
                total += rss
                peaks = self.peak_kib[name]
                peaks[pid] = max(peaks.get(pid, 0), hwm)
            self.peak_total_kib[name] = max(self.peak_total_kib[name], total)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def report(self, name: str) -> dict[str, float]:
        peaks = self.peak_kib.get(name, {})
        root = self.roots.get(name)
        workers = [kib for pid, kib in peaks.items() if pid != root] or list(peaks.values()) or [0]
        return {
            "peak_rss_per_process_mib": round(max(workers) / 1024, 1),
            "peak_rss_total_mib": round(self.peak_total_kib.get(name, 0) / 1024, 1),
            "processes_seen": len(peaks),
        }


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            # The schema takes seconds to generate on a busy shared machine: wait for it, don't re-ask.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/schema/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int, log: IO[bytes]) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """gunicorn as in production (gunicorn.conf.py), bound to 127.0.0.1 only, after the release
    step's collectstatic (the pages' hashed static names come from its manifest)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        check=True,
    )
    port = free_port()
    command = [
        str(BIN / "gunicorn"), "events_platform.wsgi", "-c", "gunicorn.conf.py",
        "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
    ]  # fmt: skip
    proc_env = {**env, "WEB_CONCURRENCY": str(workers), "PORT": str(port)}
    proc = subprocess.Popen(command, cwd=BASE_DIR, env=proc_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(port, proc, timeout=180)
        yield port, proc
    finally:
        _stop(proc)


@contextmanager
def celery_worker(env: dict[str, str], *, queue: str, log: IO[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker on the bench queue, started like events_platform/testing.py does (solo pool);
    without -Q it consumes every queue the app uses (the default one and the webhooks one)."""
    command = [
        sys.executable, "-m", "celery", "-A", "events_platform", "worker", "--pool=solo",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=BASE_DIR, env={**env, "CELERY_QUEUE": queue}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if b" ready." in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not ready.wait(0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start (see its log)")
        yield proc
    finally:
        _stop(proc)
