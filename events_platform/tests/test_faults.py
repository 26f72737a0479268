"""Fault tests on PostgreSQL with real Celery workers (and beat) on Redis: what a killed database
connection, a killed web process, a killed worker or a stopped broker leave behind, and how the
system recovers with no manual action and no new traffic (README, Limits: "Recovery")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact, ContactTotals, CustomEvent
from contacts.services import EventInput
from contacts.signals import changes_written
from events_platform.testing import BASE_DIR, _database_url, celery_worker, worker_unavailable_reason
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create, workspace_create
from segments import services as segment_services
from segments.models import Segment, SegmentMembership
from segments.tests.trees import all_of, goal_leaf

pytestmark = [pytest.mark.celery_worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The target: pending work resumes within 30 s of the fault ending.
RECOVERY = 30.0


@pytest.fixture(autouse=True)
def _needs_services() -> None:
    reason = worker_unavailable_reason()
    if reason:
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail(f"REQUIRE_SERVICES is set but the fault tests cannot run: {reason}")
        pytest.skip(reason)


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.1)
    return time.monotonic() - started


def purchase(email: str, external_id: str, value: str) -> EventInput:
    return EventInput(
        email=email,
        event_name="order.completed",
        external_id=external_id,
        occurred_at=timezone.now() - timedelta(hours=1),
        goal={"goal_type": "purchase", "goal_value": Decimal(value)},
    )


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
