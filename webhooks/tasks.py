"""Background work for webhooks, on its own Celery queue (``webhooks``; see ``route_task``).

Tasks take no rows: each claims what is due (SKIP LOCKED), so any number of workers share the
work and a lost or duplicated task costs nothing. The sweep (beat, or ``run_scheduler`` in the
embedded mode) re-publishes whatever a lost publish, a retry's due time or a dead worker left.
"""

from __future__ import annotations

import math
from typing import Any

from celery import shared_task
from django.conf import settings

from . import services

MAX_SEND_TASKS_PER_SWEEP = 4


def webhook_queue(default_queue: str) -> str:
    """``webhooks`` beside the default ``celery`` queue; ``<name>-webhooks`` beside any other
    (CELERY_QUEUE lets environments share a Redis, and their webhooks must not mix either)."""
    return settings.WEBHOOK_QUEUE or ("webhooks" if default_queue == "celery" else f"{default_queue}-webhooks")


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str] | None:
    """Celery router: webhook tasks go to the webhooks queue (read at publish time, so a changed
    default queue moves them too)."""
    if name.startswith("webhooks."):
        from events_platform.celery import app

        return {"queue": webhook_queue(app.conf.task_default_queue)}
    return None


@shared_task(acks_late=True, ignore_result=True)
def webhooks_fan_out_task() -> int:
    """Turn outbox rows into deliveries, a bounded batch at a time."""
    services.fan_out_starting()
    taken, _created = services.outbox_fan_out()
    if taken >= services.FAN_OUT_BATCH:
        services.fan_out_publish()
    return taken


@shared_task(acks_late=True, ignore_result=True)
def webhooks_send_task() -> int:
    """Send due deliveries until none are left (or the time budget is spent, then hand over)."""
    sent = services.deliveries_send_due()
    if sent and services.webhooks_sweep().due:
        webhooks_send_task.delay()
    return sent


@shared_task(ignore_result=True)
def webhooks_sweep_task() -> int:
    """Re-publish what is waiting: outbox rows (a lost fan-out), due retries, expired claims."""
    result = services.webhooks_sweep()
    if result.outbox_waiting:
        services.fan_out_publish()
    tasks = min(math.ceil(result.due / services.SEND_BATCH), MAX_SEND_TASKS_PER_SWEEP)
    for _ in range(tasks):
        webhooks_send_task.delay()
    return result.due


@shared_task(ignore_result=True)
def webhooks_prune_task() -> int:
    """Delete settled deliveries past the retention period."""
    return services.deliveries_prune()
