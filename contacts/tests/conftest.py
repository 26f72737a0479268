"""Fixtures for the contacts tests: a second tenant, row counts to prove nothing was written, and
a way to let writes' after-commit work (the queue drain that refreshes stored totals) run."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, TimelineEntry
from contacts.tests.factories import WorkspaceFactory
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create

RowCounts = dict[str, int]
AfterCommit = Callable[[], AbstractContextManager[Any]]


@pytest.fixture
def row_counts(db: None) -> Callable[[], RowCounts]:
    """Counts of every table an API write touches; compare before and after a rejected request."""

    def count() -> RowCounts:
        return {
            "contacts": Contact.objects.count(),
            "events": CustomEvent.objects.count(),
            "timeline": TimelineEntry.objects.count(),
        }

    return count


@pytest.fixture
def other_workspace(db: None) -> Workspace:
    return WorkspaceFactory.create(id="globex", name="Globex")


@pytest.fixture
def other_api_client(other_workspace: Workspace) -> APIClient:
    """A client holding a key of ``other_workspace``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=other_workspace, name='t').secret}")
    return client


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks: Any) -> AfterCommit:
    """``with after_commit(): <writes>`` runs, on leaving, what the writes queued for after their
    commit, as production does: the contacts they changed are queued and drained in-process
    (eager Celery), which refreshes their stored totals and segments."""
    return functools.partial(django_capture_on_commit_callbacks, execute=True)
