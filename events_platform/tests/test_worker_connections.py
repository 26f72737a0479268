"""A real Celery worker keeps its database session from task to task (CELERY_DB_REUSE_MAX, the
per-task rules in events_platform/celery.py) instead of opening a new PostgreSQL session for
every task, and still drops a session that is gone (a terminated backend) before its next task
uses it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import partial

import pytest
from django.db import connection

from contacts.tasks import contacts_refresh_stale_task
from events_platform.testing import celery_worker
from segments.tests.test_worker import require_worker_services, wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _sessions(application: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid", [application])
        return [pid for (pid,) in cursor.fetchall()]


def _run_tasks(worker_succeeded: Callable[[str], int], count: int, application: str) -> list[list[int]]:
    """Send the sweep task ``count`` times, one after the other; the worker's sessions after each."""
    name = "contacts.tasks.contacts_refresh_stale_task"
    seen = []
    for n in range(1, count + 1):
        contacts_refresh_stale_task.delay()
        wait_for(partial(lambda want: worker_succeeded(name) >= want, n), timeout=30)
        time.sleep(0.2)  # the task's postrun (where a connection would be closed) is done
        seen.append(_sessions(application))
    return seen


def _tagged(**settings: str) -> tuple[str, dict[str, str]]:
    """A name for the worker's sessions (PGAPPNAME) and its environment, connections kept 60 s."""
    application = f"test-worker-{uuid.uuid4().hex[:8]}"
    return application, {"PGAPPNAME": application, "CONN_MAX_AGE": "60", **settings}


def test_a_worker_runs_its_tasks_on_one_database_session() -> None:
    # given
    require_worker_services("the worker connection tests")
    application, env = _tagged()
    with celery_worker(env=env) as worker:
        # when
        seen = _run_tasks(worker.succeeded, 4, application)
    # then: one session, the same after every task
    assert len(seen[0]) == 1, seen
    assert all(sessions == seen[0] for sessions in seen), seen


def test_without_reuse_each_task_opens_its_own_session() -> None:
    """The behaviour CELERY_DB_REUSE_MAX=0 gives back (Celery's default): nothing is left open."""
    # given
    require_worker_services("the worker connection tests")
    application, env = _tagged(CELERY_DB_REUSE_MAX="0")
    with celery_worker(env=env) as worker:
        # when
        seen = _run_tasks(worker.succeeded, 2, application)
    # then
    assert seen == [[], []]


def test_a_terminated_session_is_replaced_before_the_next_task_uses_it() -> None:
    # given
    require_worker_services("the worker connection tests")
    application, env = _tagged()
    with celery_worker(env=env) as worker:
        (first,) = _run_tasks(worker.succeeded, 1, application)[0:1]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [first[0]])
        wait_for(lambda: _sessions(application) == [], timeout=10)
        # when
        seen = _run_tasks(worker.succeeded, 2, application)
        failed = [line for line in worker.log if "raised unexpected" in line]
    # then: the next tasks succeeded on a new session
    assert not failed, failed
    assert len(seen[0]) == 1 and seen[0] != first and seen[1] == seen[0], (first, seen)
