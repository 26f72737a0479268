"""Fault tests on PostgreSQL with real Celery workers (and beat) on Redis: what a killed database
connection, a killed web process, a killed worker or a stopped broker leave behind, and how the
system recovers with no manual action and no new traffic (README, Limits: "Recovery")."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import kombu.pools
import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact, ContactTotals, CustomEvent
from contacts.services import events_upsert
from contacts.signals import changes_written
from events_platform.testing import BASE_DIR, _database_url, celery_worker
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create, workspace_create
from segments import services as segment_services
from segments.models import Segment, SegmentMembership
from segments.tests.test_worker import purchase, require_worker_services, wait_for
from segments.tests.trees import all_of, goal_leaf

pytestmark = [pytest.mark.celery_worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The target: pending work resumes within 30 s of the fault ending.
RECOVERY = 30.0
OUTAGE = 20.0  # seconds the broker stays down


@pytest.fixture(autouse=True)
def _needs_services() -> None:
    require_worker_services("the fault tests")


def members(slug: str) -> set[str]:
    return set(SegmentMembership.objects.filter(segment__slug=slug).values_list("contact__email", flat=True))


def lifetime_value(email: str) -> Decimal | None:
    totals = ContactTotals.objects.filter(contact__email=email).first()
    return totals.lifetime_value if totals else None


def big_buyers(workspace: Workspace) -> Segment:
    """An active segment of contacts who spent 100 or more, built by the running worker."""
    segment = segment_services.segment_create(
        workspace_id=workspace.id, slug="big", name="Big", tree=all_of(goal_leaf("sum", "gte", 100))
    )
    wait_for(lambda: Segment.objects.get(pk=segment.pk).status == Segment.Status.ACTIVE, timeout=RECOVERY)
    return segment


@pytest.fixture
def shop() -> Workspace:
    return workspace_create(workspace_id="shop", name="Shop")


# ---------------------------------------------------------------------------------------
# 1. A change whose after-commit step is lost
# ---------------------------------------------------------------------------------------


@pytest.fixture
def connection_killed_after_commit() -> Iterator[None]:
    """Terminates this process's database connection right after the next write's commit, before
    anything the write left for after its commit (or after the response) runs."""

    def kill_after_commit(sender: Any, **kwargs: Any) -> None:
        pid = connection.connection.info.backend_pid

        def kill() -> None:
            with psycopg.connect(_database_url(), autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])

        transaction.on_commit(kill)  # registered before the write's own after-commit work

    changes_written.connect(kill_after_commit, dispatch_uid="test-kill-after-commit")
    yield
    changes_written.disconnect(dispatch_uid="test-kill-after-commit")
    connection.close()


def test_a_connection_killed_between_commit_and_the_after_response_step_loses_no_refresh(
    shop: Workspace, connection_killed_after_commit: None
) -> None:
    """The change and "this contact changed" commit together: with the web process's connection
    gone right after the commit, the purchase still reaches the contact's totals and segments."""
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=shop, name='t').secret}")
    with celery_worker(beat=True):
        big_buyers(shop)
        # when
        response = client.post(
            "/api/customEvents.upsert",
            {
                "workspace_id": shop.id,
                "email": "a@x.io",
                "event_name": "order.completed",
                "external_id": "o1",
                "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
                "goal_type": "purchase",
                "goal_value": 150,
            },
            format="json",
        )
        connection.close()  # the one the fault killed
        # then
        assert response.status_code == 200, response.content
        wait_for(lambda: members("big") == {"a@x.io"}, timeout=RECOVERY)
        assert lifetime_value("a@x.io") == Decimal("150.00")


WRITE_AND_DIE = """
import os, signal
import django
django.setup()
from datetime import timedelta
from decimal import Decimal
from django.db import transaction
from django.utils import timezone
from contacts.services import EventInput, events_upsert
from contacts.signals import changes_written

def die_after_commit(sender, **kwargs):
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))

changes_written.connect(die_after_commit)
with transaction.atomic():
    events_upsert(workspace_id="shop", events=[EventInput(
        email="b@x.io", event_name="order.completed", external_id="o2",
        occurred_at=timezone.now() - timedelta(hours=1),
        goal={"goal_type": "purchase", "goal_value": Decimal("250")},
    )])
"""


def test_a_web_process_killed_right_after_its_commit_loses_no_refresh(shop: Workspace) -> None:
    """A process SIGKILLed between its commit and the publish of the drain: nothing else is
    written to this workspace, yet the beat sweep drains the queued contact within 30 s."""
    # given
    with celery_worker(beat=True):
        big_buyers(shop)
        # when
        env = {
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": _database_url(),
            "DJANGO_SETTINGS_MODULE": "events_platform.settings",
        }
        env.pop("PYTEST_CURRENT_TEST", None)
        died = subprocess.run(  # noqa: S603 (fixed command line)
            [sys.executable, "-c", WRITE_AND_DIE], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
        )
        # then
        assert died.returncode == -signal.SIGKILL, died.stderr
        assert CustomEvent.objects.filter(external_id="o2", contact__email="b@x.io").exists()
        waited = wait_for(lambda: members("big") == {"b@x.io"}, timeout=RECOVERY)
        assert lifetime_value("b@x.io") == Decimal("250.00")
        assert waited < RECOVERY
        assert Contact.objects.filter(email="b@x.io").count() == 1


# ---------------------------------------------------------------------------------------
# 2. A worker killed in the middle of a build
# ---------------------------------------------------------------------------------------


def test_a_worker_killed_mid_build_has_its_build_finished_by_another_within_30_s(
    shop: Workspace, record_property: Any
) -> None:
    """Two workers; the one running the build is SIGKILLed while its build waits inside its
    statement. Its session (and with it its build lock) ends, and the other worker's beat sweep
    hands the build over: the segment is active within 30 s, with no new request."""
    # given a buyer, two workers on one queue, and the events table locked so a build stalls
    events_upsert(workspace_id=shop.id, events=[purchase("a@x.io", "o1", "150")])
    queue = f"test-kill-{os.getpid()}-{time.monotonic_ns()}"
    with celery_worker(queue=queue, beat=True) as first, celery_worker(queue=queue, beat=True) as second:
        blocker = psycopg.connect(_database_url())
        blocker.execute("LOCK TABLE contacts_customevent IN ACCESS EXCLUSIVE MODE")
        try:
            segment = segment_services.segment_create(
                workspace_id=shop.id, slug="big", name="Big", tree=all_of(goal_leaf("sum", "gte", 100))
            )
            wait_for(lambda: Segment.objects.get(pk=segment.pk).build_phase == "running", timeout=RECOVERY)

            def received(worker: Any) -> bool:
                return any("segment_build_task[" in line and " received" in line for line in list(worker.log))

            wait_for(lambda: received(first) or received(second), timeout=10)
            building, survivor = (first, second) if received(first) else (second, first)
            # when the worker running the build dies, and the lock goes
            building.process.send_signal(signal.SIGKILL)
            building.process.wait(timeout=10)
            killed_at = time.monotonic()
        finally:
            blocker.rollback()
            blocker.close()
        # then the survivor builds it, within 30 s of the kill
        wait_for(lambda: Segment.objects.get(pk=segment.pk).status == Segment.Status.ACTIVE, timeout=RECOVERY)
        rebuilt = time.monotonic() - killed_at
        record_property("rebuilt_after_kill_s", round(rebuilt, 1))
        assert rebuilt < RECOVERY
        assert members("big") == {"a@x.io"}
        wait_for(lambda: survivor.succeeded("segments.tasks.segment_build_task") >= 1, timeout=5)


# ---------------------------------------------------------------------------------------
# 3. The broker stopped, then back
# ---------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A private redis-server on a free port (never the shared one), stopped and started by the test."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (fixed command line)
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def _pings(client: Any) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    """A second Redis as the Celery broker of this process and of the workers the test starts."""
    from events_platform.celery import app as celery_app

    server = RedisServer()
    server.start()
    previous = celery_app.conf.broker_url

    def switch(url: str) -> None:
        # Celery has no public way to move a running app to another broker: its connection and
        # producer pools are dropped (kombu's registry too, or it hands back the closed ones when
        # the URL comes back), so the next publish connects to the new URL.
        celery_app.pool.force_close_all()  # type: ignore[attr-defined]  # kombu's pool, untyped here
        kombu.pools.reset()
        celery_app.conf.update(broker_url=url)
        setattr(celery_app, "_pool", None)  # noqa: B010 (a private attribute, named on purpose)
        setattr(celery_app.amqp, "_producer_pool", None)  # noqa: B010

    switch(server.url)
    try:
        yield server
    finally:
        switch(previous)
        server.stop()


def test_writes_succeed_while_the_broker_is_down_and_their_work_resumes_within_30_s(
    shop: Workspace, broker: RedisServer, django_user_model: Any, record_property: Any
) -> None:
    """Broker stopped: segments.create answers 201 with build_phase "queued" (its page says the
    build is queued), ingest keeps storing. Broker back: with no further request, the new
    segment is built and the purchase reaches the segments within 30 s."""
    # given a worker (and beat) on the broker, and a built segment
    from events_platform.workspaces.services import workspace_member_add

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=shop, name='t').secret}")
    user = django_user_model.objects.create_user(username="marketer")
    workspace_member_add(workspace=shop, user=user)
    with celery_worker(beat=True, broker_url=broker.url):
        big_buyers(shop)
        # when the broker stops (for 20 s, as in the run)
        broker.stop()
        stopped = time.monotonic()
        created = client.post(
            "/api/segments.create",
            {
                "workspace_id": shop.id,
                "id": "any_buyer",
                "name": "Any buyer",
                "tree": all_of(goal_leaf("count", "gte", 1)),
            },
            format="json",
        )
        events_upsert(workspace_id=shop.id, events=[purchase("c@x.io", "o3", "300")])
        # then the writes are stored and say the build is queued
        assert created.status_code in (200, 201), created.content
        assert created.json()["segment"]["build_phase"] == "queued"
        assert Segment.objects.get(slug="any_buyer").status == Segment.Status.BUILDING
        assert CustomEvent.objects.filter(external_id="o3").exists()
        page = APIClient()
        page.force_login(user)
        html = page.get("/segments/any_buyer/").content.decode()
        assert "Build queued" in html

        # when the broker is back, with no new traffic
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        broker.start()
        back = time.monotonic()
        # then
        wait_for(lambda: Segment.objects.get(slug="any_buyer").status == Segment.Status.ACTIVE, timeout=RECOVERY)
        wait_for(lambda: members("big") == {"c@x.io"}, timeout=RECOVERY)
        resumed = time.monotonic() - back
        record_property("resumed_after_broker_back_s", round(resumed, 1))
        assert resumed < RECOVERY
        assert members("any_buyer") == {"c@x.io"}
        assert lifetime_value("c@x.io") == Decimal("300.00")
