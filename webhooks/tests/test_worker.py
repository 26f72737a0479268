"""Delivery through real Celery workers on Redis and PostgreSQL: each delivery sent exactly once
by four competing workers, and a worker killed mid-send replaced after its lease."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from contacts.services import events_upsert
from events_platform.testing import celery_worker, worker_unavailable_reason
from events_platform.workspaces.services import workspace_create
from webhooks import tasks
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.receiver import Answer, Receiver

from .conftest import purchases, subscribe, verify

pytestmark = [pytest.mark.celery_worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
LOOPBACK = {"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


@pytest.fixture(autouse=True)
def _needs_services(settings: Any) -> None:
    reason = worker_unavailable_reason()
    if reason:
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(f"REQUIRE_SERVICES is set but the real-worker test cannot run: {reason}")
        pytest.skip(reason)
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, every: Callable[[], Any] | None = None) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        if every is not None:
            every()
        time.sleep(0.1)
    return time.monotonic() - started


def _batch(start: int, size: int) -> list[Any]:
    return purchases(size, start=start, emails=97)


def test_a_commit_reaches_the_receiver_through_a_plain_worker() -> None:
    """One worker with no -Q consumes the webhooks queue too: an import is received, signed, within seconds."""
    # given
    workspace = workspace_create(workspace_id="shop", name="Shop")
    with Receiver() as receiver, celery_worker(env=LOOPBACK) as worker:
        subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
        # when
        committed = time.time()
        events_upsert(workspace_id=workspace.id, events=_batch(0, 3))
        got = receiver.wait_for(3, timeout=15)
        # then
        assert len(got) == 3
        for request in got:
            verify(subscription.secret, request)
        assert max(r.at for r in got) - committed < 5
        wait_for(lambda: worker.succeeded("webhooks.tasks.webhooks_send_task") >= 1, timeout=5)


def test_four_workers_send_a_thousand_deliveries_exactly_once() -> None:
    """Competing workers claim with SKIP LOCKED: 1,000 deliveries, each received once, one attempt each."""
    # given
    workspace = workspace_create(workspace_id="shop", name="Shop")
    queue = f"test-{uuid.uuid4().hex[:12]}"
    with Receiver() as receiver:
        subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
        with (
            celery_worker(queue=queue, env=LOOPBACK),
            celery_worker(queue=queue, env=LOOPBACK),
            celery_worker(queue=queue, env=LOOPBACK),
            celery_worker(queue=queue, env=LOOPBACK),
        ):
            # when 20 imports of 50 commit
            for n in range(20):
                events_upsert(workspace_id=workspace.id, events=_batch(n * 50, 50))
            got = receiver.wait_for(1000, timeout=120)
            time.sleep(1)  # anything sent twice would arrive meanwhile
        # then
        ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
        assert len(got) >= 1000
        assert len(ids) == 1000
        assert max(ids.values()) == 1
    assert WebhookDelivery.objects.filter(subscription=subscription, status="delivered").count() == 1000
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}
    assert WebhookAttempt.objects.count() == 1000


def test_a_worker_killed_mid_send_is_replaced_after_the_lease() -> None:
    """The receiver holds the first request while its worker is killed; after the lease another
    worker sends the same delivery (same webhook-id) and it ends delivered."""
    # given a receiver that keeps the first request waiting
    workspace = workspace_create(workspace_id="shop", name="Shop")
    arrived, release = threading.Event(), threading.Event()

    def hold_first(request: Any) -> Answer:
        if not arrived.is_set():
            arrived.set()
            release.wait(20)
        return Answer()

    short = {**LOOPBACK, "WEBHOOK_TIMEOUT": "2", "WEBHOOK_CLAIM_LEASE": "8"}
    queue = f"test-{uuid.uuid4().hex[:12]}"
    with Receiver(hold_first) as receiver:
        subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
        with celery_worker(queue=queue, env=short) as doomed:
            events_upsert(workspace_id=workspace.id, events=_batch(0, 1))
            assert arrived.wait(20), "the first attempt never arrived"
            # when its worker dies mid-send
            os.kill(doomed.process.pid, signal.SIGKILL)
            doomed.process.wait(10)
            release.set()
        claimed = WebhookDelivery.objects.get()
        assert claimed.status == "delivering"
        lease_end = claimed.next_attempt_at  # a claim's next_attempt_at is its lease's end
        with celery_worker(queue=queue, env=short):
            delivery = WebhookDelivery.objects.get()
            # then (the test plays beat: the sweep finds the claim once its lease is over)
            wait_for(
                lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered",
                timeout=40,
                every=lambda: tasks.webhooks_sweep_task.delay(),
            )
        first, again = receiver.requests[:2]
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == delivery.message_id
    assert first.body == again.body
    verify(subscription.secret, again)
    kinds = list(
        WebhookAttempt.objects.filter(delivery=delivery).order_by("number", "id").values_list("error_kind", flat=True)
    )
    assert kinds == ["lease_expired", ""]
    # it waited for the lease rather than racing the dead worker (compared with the lease's
    # recorded end, so a slow worker start-up on a loaded machine neither hides nor fakes it)
    assert lease_end is not None and again.at >= lease_end.timestamp(), (again.at, lease_end)


def test_writes_while_a_fan_out_is_queued_publish_no_other_and_it_takes_all_their_rows() -> None:
    """Ten writes with a subscription while no worker consumes the queue put ONE fan-out task on
    the broker (not ten); once a worker runs it, every write's rows become deliveries, and a write
    after that task started publishes again (it is not covered by a task that already claimed)."""
    from events_platform.celery import app as celery_app
    from events_platform.redis_client import client

    # given: publishes go to a private queue no worker consumes yet
    workspace = workspace_create(workspace_id="shop", name="Shop")
    queue = f"test-{uuid.uuid4().hex[:12]}"
    webhooks_queue = tasks.webhook_queue(queue)
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, queue
    try:
        with Receiver() as receiver:
            subscribe(workspace, receiver.url, event_types=["custom_event.created"])
            # when ten writes commit
            for n in range(10):
                events_upsert(workspace_id=workspace.id, events=_batch(n * 5, 5))
            # then one fan-out is waiting on the broker
            assert client().llen(webhooks_queue) == 1
            # when a worker takes it
            with celery_worker(queue=queue, env=LOOPBACK) as worker:
                got = receiver.wait_for(50, timeout=30)
                wait_for(lambda: worker.succeeded("webhooks.tasks.webhooks_fan_out_task") >= 1, timeout=10)
                # then all fifty rows were delivered by that one fan-out
                assert len({r.headers["webhook-id"] for r in got}) == 50
                assert worker.succeeded("webhooks.tasks.webhooks_fan_out_task") == 1
                # and a later write is published and delivered too
                events_upsert(workspace_id=workspace.id, events=_batch(50, 1))
                assert len(receiver.wait_for(51, timeout=30)) >= 51
                wait_for(lambda: worker.succeeded("webhooks.tasks.webhooks_fan_out_task") == 2, timeout=10)
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
