"""Background work through a real Celery worker process on the Redis broker."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.models import PendingContactRefresh
from contacts.services import EventInput, events_upsert
from events_platform.testing import celery_worker, worker_unavailable_reason
from events_platform.workspaces.services import workspace_create
from segments import services
from segments.models import Segment, SegmentMembership
from segments.tests.trees import all_of, goal_leaf

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def require_worker_services(what: str) -> None:
    """Skip when the worker's services (PostgreSQL, Redis) are missing; fail instead when
    REQUIRE_SERVICES is set, naming ``what`` could not run."""
    reason = worker_unavailable_reason()
    if reason:
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(f"REQUIRE_SERVICES is set but {what} cannot run: {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _needs_services() -> None:
    require_worker_services("the real-worker test")


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


def purchase(email: str, external_id: str, value: str) -> EventInput:
    return EventInput(
        email=email,
        event_name="order.completed",
        external_id=external_id,
        occurred_at=timezone.now() - timedelta(hours=1),
        goal={"goal_type": "purchase", "goal_value": Decimal(value)},
    )


def test_worker_builds_a_segment_and_moves_a_contact_after_a_purchase():
    """With a real worker, a new segment becomes active, and a purchase moves its buyer in within 5 s."""
    # given
    workspace = workspace_create(workspace_id="shop", name="Shop")
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "1200"), purchase("b@x.io", "o2", "50")])
    tree = all_of(goal_leaf("sum", "gte", 1000))

    def members() -> set[str]:
        return set(SegmentMembership.objects.filter(segment__slug="big").values_list("contact__email", flat=True))

    with celery_worker() as worker:
        # when the segment is created, the worker builds it
        segment = services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=tree)
        wait_for(lambda: Segment.objects.get(pk=segment.pk).status == Segment.Status.ACTIVE)
        # then
        assert members() == {"a@x.io"}
        assert Segment.objects.get(pk=segment.pk).member_count == 1
        wait_for(lambda: worker.succeeded("segments.tasks.segment_build_task") == 1, timeout=5)

        # when b buys enough, the on-commit signal sends b to the worker
        events_upsert(workspace_id=workspace.id, events=[purchase("b@x.io", "o3", "990")])
        elapsed = wait_for(lambda: "b@x.io" in members(), timeout=10)
        # then
        assert members() == {"a@x.io", "b@x.io"}
        assert elapsed < 5, f"membership took {elapsed:.2f}s"
        wait_for(lambda: worker.succeeded("contacts.tasks.contacts_refresh_pending_task") >= 1, timeout=5)


def test_commits_close_together_share_drains_and_no_contact_is_missed():
    """Ten quick purchases are all applied, by fewer drains than commits (one publish per window)."""
    # given
    workspace = workspace_create(workspace_id="shop", name="Shop")
    tree = all_of(goal_leaf("sum", "gte", 100))
    buyers = {f"c{i}@x.io" for i in range(10)}

    def members() -> set[str]:
        return set(SegmentMembership.objects.filter(segment__slug="big").values_list("contact__email", flat=True))

    with celery_worker() as worker:
        segment = services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=tree)
        wait_for(lambda: Segment.objects.get(pk=segment.pk).status == Segment.Status.ACTIVE)
        # when ten buyers commit one after another, each in its own transaction
        for i, email in enumerate(sorted(buyers)):
            events_upsert(workspace_id=workspace.id, events=[purchase(email, f"o{i}", "150")])
        # then every one of them arrives
        wait_for(lambda: members() == buyers, timeout=10)
        time.sleep(1)  # let any drain still queued finish and log
        drains = worker.succeeded("contacts.tasks.contacts_refresh_pending_task")
        assert 1 <= drains < len(buyers)
        assert not PendingContactRefresh.objects.filter(workspace_id=workspace.id).exists()
