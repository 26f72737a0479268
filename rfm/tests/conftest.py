"""Fixtures for RFM tests: a workspace in a non-UTC timezone and a writer of raw event histories."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from contacts.models import Contact, CustomEvent
from contacts.services import events_upsert
from contacts.tests.factories import EventInputFactory
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import workspace_create
from rfm.tests.oracle import Event

AfterCommit = Callable[[], AbstractContextManager[Any]]


@pytest.fixture
def rfm_workspace(db: None) -> Workspace:
    return workspace_create(workspace_id="rfm_ws", name="RFM tests", timezone_name="Europe/Paris")


def store_contacts(workspace: Workspace, count: int) -> list[int]:
    """``count`` contacts of the workspace (test data, not the ingest path): their ids."""
    start = Contact.objects.filter(workspace=workspace).count()
    rows = Contact.objects.bulk_create(
        [Contact(workspace=workspace, email=f"c{start + i}@example.com") for i in range(count)]
    )
    return [row.pk for row in rows]


def store_events(workspace: Workspace, events: Iterable[Event]) -> None:
    """Write events exactly as given (the oracle's ``Event``s), bypassing ingest."""
    CustomEvent.objects.bulk_create(
        [
            CustomEvent(
                workspace=workspace,
                contact_id=event.contact_id,
                event_name=event.event_name,
                external_id=f"x{index}-{CustomEvent.objects.count()}",
                occurred_at=event.occurred_at,
                goal_type=event.goal_type,
                goal_value=event.goal_value,
                deleted_at=event.occurred_at if event.deleted else None,
            )
            for index, event in enumerate(events)
        ]
    )


def buy(workspace: Workspace, email: str, value: str, *, days_ago: float) -> None:
    """A purchase of ``value`` by ``email`` ``days_ago`` days ago, through the ingest service."""
    events_upsert(
        workspace_id=workspace.id,
        events=[
            EventInputFactory.build(
                email=email,
                occurred_at=timezone.now() - dt.timedelta(days=days_ago),
                goal={"goal_type": "purchase", "goal_value": Decimal(value)},
            )
        ],
    )


def purchase(contact_id: int, at: dt.datetime, value: str, *, name: str = "order.completed") -> Event:
    return Event(contact_id, "purchase", name, Decimal(value), at)


def store_small_shop(workspace: Workspace, now: dt.datetime) -> list[int]:
    """26 contacts: 24 customers with 1 to 4 orders from 2 to 500 days before ``now``, then two
    who never bought. Their ids."""
    ids = store_contacts(workspace, 26)
    store_events(
        workspace,
        [
            purchase(ids[i], now - dt.timedelta(days=[2, 20, 90, 200, 500][i % 5] + n), f"{10 + 37 * i}.00")
            for i in range(24)
            for n in range(1 + i % 4)
        ],
    )
    return ids


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks: Any) -> AfterCommit:
    """``with after_commit(): <writes>`` runs, on leaving, what the writes queued for after their
    commit, as production does (eager Celery): full runs, the refresh queue's drain."""
    return functools.partial(django_capture_on_commit_callbacks, execute=True)
