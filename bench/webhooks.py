"""Figure 6: outgoing webhooks, with the bench's gunicorn and Celery worker and a real receiver on 127.0.0.1.

- import rate with one enabled subscription on every type vs none (``customEvents.import`` x50,
  1 client, rounds alternating so both sides see the same machine), target >= 90%;
- commit-to-receipt latency: ``customEvents.upsert`` answered -> its ``custom_event.created``
  received, one at a time, target p50 < 1 s;
- delivery throughput of the one worker: deliveries prepared in-process, then sent.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from tqdm import tqdm

IMPORT_TARGET = 0.9
LATENCY_TARGET_MS = 1000.0


def _log(message: str) -> None:
    tqdm.write(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr)


def cleanup(raw: Any, workspace_id: str) -> None:
    """Remove the figure's subscriptions, deliveries and outbox rows (raw SQL: no ORM cascade)."""
    with raw.transaction():
        raw.execute(
            "DELETE FROM webhooks_webhookattempt WHERE delivery_id IN "
            "(SELECT id FROM webhooks_webhookdelivery WHERE workspace_id = %s)",
            [workspace_id],
        )
        for table in ("webhooks_webhookdelivery", "webhooks_webhookoutbox", "webhooks_webhooksubscription"):
            raw.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace_id])


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
    from bench.measure import Client, p50_p99_ms, run_clients
    from webhooks import services
    from webhooks.events import EVENT_TYPE_NAMES
    from webhooks.receiver import Receiver

    rounds, per_round = (2, 10) if small else (3, 30)
    results: dict[str, Any] = {}
    cleanup(raw, workspace_id)
    with Receiver() as receiver:
        subscription = services.subscription_create(
            workspace_id=workspace_id, name="bench receiver", url=receiver.url, event_types=list(EVENT_TYPE_NAMES)
        )
        # 1. import rate, with and without the subscription, alternating rounds
        client = Client(port, api_key)
        sides: dict[str, list[Any]] = {"none": [], "with": []}
        for n in range(rounds):
            for side in ("none", "with"):
                services.subscription_set_enabled(subscription=subscription, enabled=side == "with")
                payloads = list(
                    dataset.ingest_payloads(tag=f"{env.run_id}-wh{side}{n}", count=per_round * 50, emails=200)
                )
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
                if side == "with" and not _wait_settled(workspace_id):
                    _log("webhooks: deliveries of the import rounds did not settle within 120 s")

        def combined(runs: list[Any]) -> dict[str, Any]:
            latencies = [latency for r in runs for latency in r.latencies]
            wall = sum(r.wall_s for r in runs)
            return {
                "requests": len(latencies),
                "events_per_s": round(len(latencies) * 50 / wall, 1) if wall else 0.0,
                **p50_p99_ms(latencies),
            }

        none, with_ = combined(sides["none"]), combined(sides["with"])
        ratio = with_["events_per_s"] / none["events_per_s"] if none["events_per_s"] else 0.0
        results["import_rate"] = {
            "label": "`customEvents.import` x50, 1 client: a subscription on every type vs none",
            "with": with_,
            "none": none,
            "deliveries": receiver.requests.__len__(),
            "ratio": round(ratio, 3),
            "target": ">= 90% of the no-webhook rate",
            "met": ratio >= IMPORT_TARGET,
        }
        _log(
            f"webhooks: import with a subscription {with_['events_per_s']:,.0f} ev/s, without "
            f"{none['events_per_s']:,.0f} ev/s ({ratio * 100:.0f}%), {len(receiver.requests):,} deliveries received"
        )

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
            seen = len(receiver.requests)
            client.post_json("/api/customEvents.upsert", json.dumps(body).encode())
            answered = time.time()
            arrived = None
            deadline = time.monotonic() + 10
            while arrived is None and time.monotonic() < deadline:
                for request in receiver.requests[seen:]:
                    if external_id.encode() in request.body and b"custom_event.created" in request.body:
                        arrived = request.at
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
    cleanup(raw, workspace_id)
    return results


def _throughput(env: Any, subscription: Any, receiver: Any, workspace_id: str, n: int) -> dict[str, Any]:
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
    already = len(receiver.requests)
    queue = tasks.webhook_queue(env.queue)
    started = time.time()
    for _ in range(4):
        tasks.webhooks_send_task.apply_async(queue=queue)
    receiver.wait_for(already + pending, timeout=300)
    last = max((r.at for r in receiver.requests[already:]), default=started)
    received = len(receiver.requests) - already
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
