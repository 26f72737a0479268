"""Figure 6: outgoing webhooks, with the bench's gunicorn and Celery worker and a real receiver on 127.0.0.1.

- import rate with one enabled subscription on every type vs none (``customEvents.import`` x50,
  1 client, rounds alternating so every side sees the same machine), target >= 90%: with the
  sender elsewhere (the write path: outbox rows and their publish) and, reported beside it,
  with the sender competing for the same two cores;
- commit-to-receipt latency: ``customEvents.upsert`` answered -> its ``custom_event.created``
  received, one at a time, target p50 < 1 s;
- delivery throughput of the one worker: deliveries prepared in-process, then sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

IMPORT_TARGET = 0.9
SIDES = ("none", "elsewhere", "same_cores")
LATENCY_TARGET_MS = 1000.0


def _log(message: str) -> None:
    tqdm.write(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


class ReceiverProcess:
    """``bench.webhook_receiver`` in a subprocess; what arrived is read back from its log."""

    def __init__(self) -> None:
        handle, self.log_path = tempfile.mkstemp(prefix="bench-webhooks-", suffix=".log")
        os.close(handle)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.webhook_receiver", self.log_path],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}/hooks"
        self._offset = 0
        self.records: list[tuple[float, str, str]] = []

    def read(self) -> list[tuple[float, str, str]]:
        """Every (arrival time, type, external_id) so far."""
        with open(self.log_path) as log:
            log.seek(self._offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            at, kind, external_id = line.split(" ", 2)
            self.records.append((float(at), kind, external_id))
        return self.records

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while len(self.read()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.records)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        Path(self.log_path).unlink(missing_ok=True)


def cleanup(raw: Any, attempts: int = 5) -> None:
    """Empty the webhooks tables: only this figure writes them in the bench database.

    The worker may still be sending when deliveries did not settle in time (a busy machine): its
    row locks and the TRUNCATE's table lock can deadlock, so a deadlock is retried."""
    import psycopg

    for attempt in range(attempts):
        try:
            raw.execute(
                "TRUNCATE webhooks_webhookattempt, webhooks_webhookdelivery, webhooks_webhookoutbox, "
                "webhooks_webhooksubscription"
            )
            return
        except psycopg.errors.DeadlockDetected:
            if attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)


def _settled(workspace_id: str) -> bool:
    from webhooks.models import WebhookDelivery, WebhookOutbox

    return not (
        WebhookOutbox.objects.filter(workspace_id=workspace_id).exists()
        or WebhookDelivery.objects.filter(workspace_id=workspace_id, status__in=["pending", "delivering"]).exists()
    )


def _wait_settled(workspace_id: str, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _settled(workspace_id):
            return True
        time.sleep(0.2)
    return False


def figure_webhooks(env: Any, raw: Any, port: int, api_key: str, workspace_id: str, small: bool) -> dict[str, Any]:
    from bench import dataset
    from bench.measure import Client, p50_p99_ms, run_clients, settle
    from events_platform.celery import app as celery_app
    from webhooks import services, tasks
    from webhooks.events import EVENT_TYPE_NAMES

    rounds, per_round = (3, 20) if small else (4, 30)
    results: dict[str, Any] = {}
    cleanup(raw)
    receiver = ReceiverProcess()
    try:
        subscription = services.subscription_create(
            workspace_id=workspace_id, name="bench receiver", url=receiver.url, event_types=list(EVENT_TYPE_NAMES)
        )
        # 1. import rate: no subscription; a subscription on every type with the sender
        # elsewhere (its queue not consumed meanwhile, as with dedicated webhook workers on other
        # hosts: the write path alone); and with the sender on these same two cores. Rounds
        # alternate, so every side sees the same machine.
        client = Client(port, api_key)
        webhook_queue = tasks.webhook_queue(env.queue)
        sides: dict[str, list[Any]] = {side: [] for side in SIDES}
        for n in range(rounds):
            for side in SIDES:
                services.subscription_set_enabled(subscription=subscription, enabled=side != "none")
                if side == "elsewhere":
                    replies = celery_app.control.cancel_consumer(webhook_queue, reply=True, timeout=5)
                    if not replies:
                        _log(f"webhooks: the worker did not confirm it stopped consuming {webhook_queue}")
                    received_before = len(receiver.read())
                payloads = list(
                    dataset.ingest_payloads(tag=f"{env.run_id}-wh{side}{n}", count=per_round * 50, emails=200)
                )
                # No side runs beside the worker's refresh of the previous side's contacts.
                settle(env)
                items = [
                    json.dumps({"workspace_id": workspace_id, "events": batch}).encode()
                    for batch in dataset.batched(payloads, 50)
                ]
                run = run_clients(
                    clients=1,
                    items=items,
                    make_client=lambda: lambda body: client.post_json("/api/customEvents.import", body, 201),
                    items_per_request=50,
                )
                sides[side].append(run)
                if side == "elsewhere":
                    sent_meanwhile = len(receiver.read()) - received_before
                    if sent_meanwhile:
                        _log(f"webhooks: {sent_meanwhile} deliveries were sent while the sender was to be elsewhere")
                    celery_app.control.add_consumer(webhook_queue, reply=True, timeout=5)
                if side != "none" and not _wait_settled(workspace_id):
                    _log("webhooks: deliveries of the import rounds did not settle within 120 s")

        def combined(runs: list[Any]) -> dict[str, Any]:
            latencies = [latency for r in runs for latency in r.latencies]
            wall = sum(r.wall_s for r in runs)
            return {
                "requests": len(latencies),
                "events_per_s": round(len(latencies) * 50 / wall, 1) if wall else 0.0,
                **p50_p99_ms(latencies),
            }

        none = combined(sides["none"])
        for side, label in (
            ("elsewhere", "a subscription on every type (sender on other cores) vs none"),
            ("same_cores", "a subscription on every type, sender on the same 2 cores, vs none"),
        ):
            with_ = combined(sides[side])
            ratio = with_["events_per_s"] / none["events_per_s"] if none["events_per_s"] else 0.0
            row: dict[str, Any] = {
                "label": f"`customEvents.import` x50, 1 client: {label}",
                "with": with_,
                "none": none,
                "ratio": round(ratio, 3),
            }
            if side == "elsewhere":
                row.update(target=">= 90% of the no-webhook rate", met=ratio >= IMPORT_TARGET)
            results[f"import_rate_{side}"] = row
            _log(
                f"webhooks: import, {label}: {with_['events_per_s']:,.0f} ev/s vs {none['events_per_s']:,.0f} ev/s "
                f"({ratio * 100:.0f}%)"
            )
        results["import_rate_elsewhere"]["deliveries"] = len(receiver.read())

        # 2. commit-to-receipt latency
        services.subscription_set_enabled(subscription=subscription, enabled=True)
        count = 30 if small else 100
        latencies: list[float] = []
        timeouts = 0
        for i in tqdm(range(count), desc="webhook latency", file=sys.stderr):
            external_id = f"wh-{env.run_id}-{i}"
            body = {
                "workspace_id": workspace_id,
                "email": f"latency{i % 20}@bench.example",
                "event_name": "order.completed",
                "external_id": external_id,
                "goal_type": "purchase",
                "goal_value": 10.0,
            }
            seen = len(receiver.read())
            client.post_json("/api/customEvents.upsert", json.dumps(body).encode())
            answered = time.time()
            arrived = None
            deadline = time.monotonic() + 10
            while arrived is None and time.monotonic() < deadline:
                for at, kind, got_id in receiver.read()[seen:]:
                    if got_id == external_id and kind == "custom_event.created":
                        arrived = at
                        break
                time.sleep(0.002)
            if arrived is None:
                timeouts += 1
                latencies.append(10.0)
            else:
                latencies.append(max(0.0, arrived - answered))
        client.close()
        latency = {**p50_p99_ms(latencies), "n": count, "timeouts": timeouts}
        latency["met"] = latency["p50_ms"] < LATENCY_TARGET_MS and not timeouts
        results["latency"] = {"label": "commit (upsert answered) -> webhook received", **latency}
        _log(f"webhooks: commit-to-receipt p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms")
        _wait_settled(workspace_id)

        # 3. throughput of the worker: deliveries prepared in-process (their publishes go to the
        # bench process's discard queue), then handed to the worker and timed to the last receipt
        results["throughput"] = _throughput(env, subscription, receiver, workspace_id, 1000 if small else 5000)
    finally:
        receiver.stop()
    cleanup(raw)
    return results


def _throughput(env: Any, subscription: Any, receiver: ReceiverProcess, workspace_id: str, n: int) -> dict[str, Any]:
    from webhooks import services, tasks
    from webhooks.models import WebhookDelivery, WebhookOutbox

    services.subscription_update(
        subscription=subscription, name=subscription.name, url=subscription.url, event_types=["custom_event.created"]
    )
    rows = [
        services.OutboxEvent(
            "custom_event.created",
            subscription.created_at,
            {"id": i, "workspace_id": workspace_id, "contact_id": 0, "email": f"t{i}@bench.example",
             "event_name": "order.completed", "external_id": f"tp-{env.run_id}-{i}", "properties": {},
             "occurred_at": subscription.created_at.isoformat(), "source": "api", "integration_id": None,
             "goal_type": "purchase", "goal_name": None, "goal_value": "10.00", "deleted_at": None,
             "created_at": subscription.created_at.isoformat(), "updated_at": subscription.created_at.isoformat()},
        )
        for i in range(n)
    ]  # fmt: skip
    from django.db import transaction

    for start in range(0, n, 500):
        with transaction.atomic():
            services.outbox_record(workspace_id=workspace_id, events=rows[start : start + 500])
    while WebhookOutbox.objects.filter(workspace_id=workspace_id).exists():
        services.outbox_fan_out()
    pending = WebhookDelivery.objects.filter(subscription=subscription, status="pending").count()
    already = len(receiver.read())
    queue = tasks.webhook_queue(env.queue)
    started = time.time()
    for _ in range(4):
        tasks.webhooks_send_task.apply_async(queue=queue)
    receiver.wait_for(already + pending, timeout=300)
    last = max((at for at, _, _ in receiver.records[already:]), default=started)
    received = len(receiver.records) - already
    elapsed = max(last - started, 1e-6)
    result = {
        "label": f"delivery throughput, 1 worker (solo pool) to a local receiver, {pending:,} deliveries",
        "deliveries": pending,
        "received": received,
        "elapsed_s": round(elapsed, 2),
        "per_s": round(received / elapsed, 1),
    }
    _log(f"webhooks: {received:,} of {pending:,} deliveries in {elapsed:.1f} s ({result['per_s']:,.0f}/s)")
    return result
