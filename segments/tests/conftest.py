"""Fixtures for segment tests: a workspace of their own and a writer of raw test histories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from rest_framework.test import APIClient

from contacts.models import Contact, CustomEvent, StoredTimelineEntry
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import api_key_create, workspace_create
from segments.models import Segment, SegmentMembership


@pytest.fixture
def segments_workspace(db: None) -> Workspace:
    return workspace_create(workspace_id="seg_ws", name="Segments tests", timezone_name="UTC")


def store_history(
    *,
    workspace: Workspace,
    contacts: list[dict[str, Any]],
    events: list[dict[str, Any]],
    memberships: Mapping[str, Iterable[Any]] | None = None,
    timeline: list[dict[str, Any]] | None = None,
) -> None:
    """Write contacts, events, segment memberships and timeline entries exactly as given (test
    data, not the ingest path).

    ``contacts`` carry a local ``key`` which ``events`` and ``timeline`` entries reference as
    ``contact_key``; all get their database ``id`` / ``contact_id`` filled in place, so the same
    dicts feed the oracle afterwards. A contact's ``updated_at`` is written when given.
    """
    rows = Contact.objects.bulk_create(
        [
            Contact(
                workspace=workspace,
                email=contact["email"],
                external_id=contact["external_id"],
                first_name=contact["first_name"],
                last_name=contact["last_name"],
                properties=contact["properties"],
            )
            for contact in contacts
        ]
    )
    by_key: dict[Any, int] = {}
    for contact, row in zip(contacts, rows, strict=True):
        contact["id"] = row.pk
        by_key[contact["key"]] = row.pk
        # created_at / updated_at are automatic; set the history's values afterwards.
        stamps = {name: contact[name] for name in ("created_at", "updated_at") if name in contact}
        Contact.objects.filter(pk=row.pk).update(**stamps)
    for event in events:
        event["contact_id"] = by_key[event["contact_key"]]
    stored = CustomEvent.objects.bulk_create(
        [
            CustomEvent(
                workspace=workspace,
                contact_id=event["contact_id"],
                event_name=event["event_name"],
                external_id=f"ext_{index}",
                properties=event["properties"],
                occurred_at=event["occurred_at"],
                goal_type=event["goal_type"],
                goal_name=event["goal_name"],
                goal_value=event["goal_value"],
                deleted_at=event["deleted_at"],
            )
            for index, event in enumerate(events)
        ]
    )
    for event, stored_event in zip(events, stored, strict=True):
        event["id"] = stored_event.pk
    for entry in timeline or []:
        entry["contact_id"] = by_key[entry["contact_key"]]
    StoredTimelineEntry.objects.bulk_create(
        [
            StoredTimelineEntry(
                workspace=workspace,
                contact_id=entry["contact_id"],
                kind=entry["kind"],
                operation=entry["operation"],
                entity_type=entry["kind"].partition(".")[0],
                entity_id=str(index),
                changes={},
                created_at=entry["created_at"],
            )
            for index, entry in enumerate(timeline or [])
        ]
    )
    for slug, keys in (memberships or {}).items():
        segment = Segment.objects.create(workspace=workspace, slug=slug, name=slug, tree={}, status="active")
        SegmentMembership.objects.bulk_create(
            [
                SegmentMembership(
                    segment=segment, contact_id=by_key[key], entered_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
                )
                for key in keys
            ]
        )


@pytest.fixture
def other_workspace(db: None) -> Workspace:
    """A second tenant, to prove the segments API never crosses workspaces."""
    return workspace_create(workspace_id="globex", name="Globex")


@pytest.fixture
def other_api_client(other_workspace: Workspace) -> APIClient:
    """A client holding a key of ``other_workspace``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(workspace=other_workspace, name='t').secret}")
    return client
