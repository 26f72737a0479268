"""segment.joined / segment.left: recorded by the membership diff's own statement, for wanted
segments only, and delivered with email, contact id, segment id and name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

from contacts.models import Contact
from segments import services as segments
from segments.tests.trees import leaf
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookOutbox

from .conftest import buy, subscribe

URL = "https://hooks.example.com/in"
BIG_SPENDERS = leaf(
    "custom_events_goals",
    "custom_events_goal",
    {
        "goal_type": "purchase",
        "aggregate_operator": "sum",
        "operator": "gte",
        "value": 100,
        "timeframe_operator": "anytime",
    },
)


@pytest.fixture(autouse=True)
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    from webhooks import network

    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")])


def _segment(workspace: Any, slug: str, capture: Any) -> Any:
    with capture(execute=True):
        return segments.segment_create(workspace_id=workspace.id, slug=slug, name=slug.title(), tree=BIG_SPENDERS)


def test_a_build_records_joins_and_a_refresh_records_leaves(
    workspace: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Entering members emit segment.joined, members leaving emit segment.left, with the payload fields."""
    # given
    subscribe(workspace, URL, event_types=["segment.joined", "segment.left"])
    buy(workspace, "rich@example.com", "o1", "150")
    buy(workspace, "poor@example.com", "o2", "20")
    # when the segment is built (and, after its commit, the outbox fanned out)
    segment = _segment(workspace, "big", django_capture_on_commit_callbacks)
    # then
    joined = json.loads(WebhookDelivery.objects.get().body)
    assert joined["type"] == "segment.joined"
    rich = Contact.objects.get(email="rich@example.com")
    assert joined["data"] == {
        "email": "rich@example.com",
        "contact_id": rich.pk,
        "segment_id": "big",
        "segment_name": "Big",
    }
    # when the purchase is deleted and the contact re-evaluated
    buy(workspace, "rich@example.com", "o1", "150", deleted=True)
    segments.segments_refresh_contacts(workspace_id=workspace.id, contact_ids=[rich.pk])
    # then
    assert list(WebhookOutbox.objects.values_list("event_type", flat=True)) == ["segment.left"]
    services.outbox_fan_out()
    bodies = [json.loads(d.body) for d in WebhookDelivery.objects.order_by("id")]
    assert [b["type"] for b in bodies] == ["segment.joined", "segment.left"]
    assert bodies[1]["data"]["segment_id"] == segment.slug


def test_segment_ids_filter_what_is_recorded(workspace: Any, django_capture_on_commit_callbacks: Any) -> None:
    """A subscription limited to other segments causes no rows for this one."""
    # given
    _segment(workspace, "other", django_capture_on_commit_callbacks)
    subscribe(workspace, URL, event_types=["segment.joined"], segment_ids=["other"])
    buy(workspace, "rich@example.com", "o1", "150")
    # when
    _segment(workspace, "big", django_capture_on_commit_callbacks)
    # then
    assert WebhookOutbox.objects.count() == 0


def test_a_rolled_back_build_records_nothing(workspace: Any) -> None:
    """The membership change and its outbox rows commit together or not at all."""
    # given
    subscribe(workspace, URL, event_types=["segment.joined"])
    buy(workspace, "rich@example.com", "o1", "150")
    rich = Contact.objects.get(email="rich@example.com")
    segment = segments.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=BIG_SPENDERS)
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        segments.segments_refresh_contacts(workspace_id=workspace.id, contact_ids=[rich.pk])
        assert WebhookOutbox.objects.count() == 1
        raise RuntimeError("later failure")
    # then
    assert WebhookOutbox.objects.count() == 0
    assert segment.memberships.count() == 0


def test_the_diff_costs_no_extra_statement(workspace: Any, django_capture_on_commit_callbacks: Any) -> None:
    """Recording membership changes adds no statement to a refresh (it is part of the diff)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given
    _segment(workspace, "big", django_capture_on_commit_callbacks)
    buy(workspace, "a@example.com", "o1", "150")
    buy(workspace, "b@example.com", "o2", "150")
    ids = list(Contact.objects.values_list("pk", flat=True))

    def refresh() -> int:
        with CaptureQueriesContext(connection) as captured:
            segments.segments_refresh_contacts(workspace_id=workspace.id, contact_ids=ids)
        return len(captured.captured_queries)

    # when
    without = refresh()
    subscribe(workspace, URL, event_types=["segment.joined", "segment.left"])
    buy(workspace, "a@example.com", "o1", "150", deleted=True)
    buy(workspace, "b@example.com", "o2", "150", deleted=True)
    with_subscription = refresh()
    # then
    assert with_subscription == without
    assert WebhookOutbox.objects.filter(event_type="segment.left").count() == 2


def test_deleting_a_segment_makes_every_member_leave(workspace: Any, django_capture_on_commit_callbacks: Any) -> None:
    """A deleted segment's members leave it like any exit: a segment.left delivery each, a
    history row and a timeline entry, in the deletion's transaction."""
    from contacts.models import TimelineEntry
    from segments.models import SegmentMembership, SegmentMembershipChange

    # given two members and a subscription on leaves
    buy(workspace, "rich@example.com", "o1", "150")
    buy(workspace, "richer@example.com", "o2", "300")
    segment = _segment(workspace, "big", django_capture_on_commit_callbacks)
    subscribe(workspace, URL, event_types=["segment.left"])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        segments.segment_delete(segment=segment)
    # then
    bodies = [json.loads(d.body) for d in WebhookDelivery.objects.order_by("id")]
    assert sorted((b["type"], b["data"]["email"], b["data"]["segment_id"]) for b in bodies) == [
        ("segment.left", "rich@example.com", "big"),
        ("segment.left", "richer@example.com", "big"),
    ]
    assert not SegmentMembership.objects.filter(segment=segment).exists()
    assert (
        SegmentMembershipChange.objects.filter(segment=segment, change=SegmentMembershipChange.Change.EXITED).count()
        == 2
    )
    assert TimelineEntry.objects.filter(kind="segment.left", entity_id="big").count() == 2
