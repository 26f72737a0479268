"""Fixtures for the contacts API tests: a second tenant, and row counts to prove nothing was written."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, TimelineEntry
from contacts.tests.factories import WorkspaceFactory
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create

RowCounts = dict[str, int]


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
    return WorkspaceFactory(id="globex", name="Globex")


@pytest.fixture
def other_api_client(other_workspace: Workspace) -> APIClient:
    """A client holding a key of ``other_workspace``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=other_workspace, name='t').secret}")
    return client
