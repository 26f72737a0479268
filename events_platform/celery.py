"""Celery application: broker from REDIS_URL, tasks discovered in each app's tasks.py."""

import os
from collections.abc import Sequence
from typing import Any

import kombu.exceptions
import redis
from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "events_platform.settings")

app = Celery("events_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# What publishing a task raises while the broker is unreachable. A write catches these after its
# commit: its work is recorded in the database, and a recovery sweep publishes it once the
# broker is back (README, Limits: "Recovery").
PUBLISH_ERRORS = (kombu.exceptions.OperationalError, redis.RedisError, OSError)


def delay_each(task: Any, due: Sequence[tuple[Any, ...]]) -> int:
    """Publish ``task`` once per argument tuple of ``due`` (a sweep starting what a service found
    due, e.g. (pk, version) pairs); how many were published."""
    for arguments in due:
        task.delay(*arguments)
    return len(due)


@worker_init.connect
def _bound_worker_statements(**kwargs: Any) -> None:
    """Worker processes (forked after this) run statements under WORKER_STATEMENT_TIMEOUT."""
    from events_platform import time_limits

    time_limits.bind_process(time_limits.WORKER)


@task_prerun.connect
@task_postrun.connect
def _connections_as_between_requests(sender: Any = None, **kwargs: Any) -> None:
    """Around each task a worker runs, what Django does around each request: a connection past
    CONN_MAX_AGE, or one left broken or mid-transaction, is closed, and a kept one is
    health-checked on its next use (CONN_HEALTH_CHECKS). The kept ones are what
    CELERY_DB_REUSE_MAX allows. A task run in-process (eager: tests, the embedded mode) runs
    inside its caller's work and leaves the caller's connection alone, as Celery's fixup does."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
