"""Full builds and per-contact refreshes: membership, history, timeline, lease and versions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts import refresh
from contacts.models import Contact, PendingContactRefresh, TimelineEntry
from contacts.services import EventInput, events_upsert
from contacts.tasks import contacts_refresh_stale_task
from events_platform.workspaces.services import workspace_create
from segments import services
from segments.models import Segment, SegmentMembership, SegmentMembershipChange
from segments.tests.trees import all_of, goal_leaf, segment_leaf

pytestmark = pytest.mark.django_db


def spent_at_least(amount: float) -> dict:
    return all_of(goal_leaf("sum", "gte", amount))


def purchase(email: str, external_id: str, value: str, *, days_ago: float = 1, deleted: bool = False) -> EventInput:
    now = timezone.now()
    return EventInput(
        email=email,
        event_name="order.completed",
        external_id=external_id,
        occurred_at=now - timedelta(days=days_ago),
        goal={"goal_type": "purchase", "goal_value": Decimal(value)},
        deleted_at=now if deleted else None,
    )


@pytest.fixture
def workspace():
    return workspace_create(workspace_id="shop", name="Shop")


def build(segment: Segment, **kwargs) -> Segment:
    segment.refresh_from_db()
    assert services.segment_build(segment_pk=segment.pk, version=segment.version, **kwargs)
    segment.refresh_from_db()
    return segment


def members(segment: Segment) -> set[str]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("contact__email", flat=True))


def test_full_build_applies_the_difference_with_history_and_timeline(workspace, django_capture_on_commit_callbacks):
    """A build records who entered; a later build after a refund records who exited, each with a timeline entry."""
    # given
    events_upsert(
        workspace_id=workspace.id,
        events=[purchase("a@x.io", "o1", "600"), purchase("b@x.io", "o2", "400"), purchase("a@x.io", "o3", "500")],
    )
    segment = services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(1000))
    # when
    segment = build(segment)
    # then
    assert segment.status == Segment.Status.ACTIVE
    assert segment.member_count == 1
    assert members(segment) == {"a@x.io"}
    assert TimelineEntry.objects.filter(kind="segment.joined", contact__email="a@x.io").count() == 1

    # when a refund drops a below the threshold and the segment is rebuilt
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "r1", "-200")])
    segment = build(services.segment_rebuild(segment=segment))
    # then
    assert members(segment) == set()
    assert segment.member_count == 0
    changes = list(
        SegmentMembershipChange.objects.filter(segment=segment).order_by("id").values_list("change", flat=True)
    )
    assert changes == ["entered", "exited"]
    assert TimelineEntry.objects.filter(kind="segment.left", contact__email="a@x.io").count() == 1


def test_building_twice_changes_nothing(workspace):
    """Builds are idempotent: the same data built again writes no history."""
    # given
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "1500")])
    segment = build(
        services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(1000))
    )
    history = SegmentMembershipChange.objects.count()
    # when
    build(services.segment_rebuild(segment=segment))
    # then
    assert SegmentMembershipChange.objects.count() == history
    assert members(segment) == {"a@x.io"}


def test_an_older_version_build_is_superseded(workspace):
    """A build for version 1 does nothing once the tree changed to version 2."""
    # given
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "1500")])
    segment = services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(1000))
    old_version = segment.version
    services.segment_update(segment=segment, tree=spent_at_least(5000))
    # when
    ran = services.segment_build(segment_pk=segment.pk, version=old_version)
    # then
    assert ran is False
    assert members(segment) == set()


def test_a_stalled_build_is_taken_over_after_its_lease_expires(workspace):
    """A lease held by a crashed build blocks others only until it expires."""
    # given a build that took the lease and died
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "1500")])
    segment = services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(1000))
    now = timezone.now()
    assert services._lease(segment.pk, segment.version, now) is not None
    # when another build tries within the lease, then after it
    blocked = services.segment_build(segment_pk=segment.pk, version=segment.version, now=now + timedelta(minutes=1))
    due = services.segments_due_for_refresh(now=now + services.BUILD_LEASE + timedelta(seconds=1))
    taken = services.segment_build(
        segment_pk=segment.pk, version=segment.version, now=now + services.BUILD_LEASE + timedelta(seconds=1)
    )
    # then
    assert blocked is False
    assert (segment.pk, segment.version) in due
    assert taken is True
    assert members(segment) == {"a@x.io"}


def test_refresh_contacts_moves_only_the_given_contacts(workspace):
    """Re-evaluating one contact changes its membership alone, in every active segment."""
    # given two segments built while nobody qualified
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "10"), purchase("b@x.io", "o2", "10")])
    big = build(services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(100)))
    any_buyer = build(
        services.segment_create(
            workspace_id=workspace.id,
            slug="buyers",
            name="Buyers",
            tree=all_of(goal_leaf("count", "gte", 1)),
        )
    )
    assert members(big) == set()
    # when a and b both buy big, but only a is re-evaluated
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o3", "500"), purchase("b@x.io", "o4", "500")])
    a = Contact.objects.get(email="a@x.io")
    changes = services.segments_refresh_contacts(workspace_id=workspace.id, contact_ids=[a.pk])
    # then
    big.refresh_from_db()
    assert changes == 1
    assert members(big) == {"a@x.io"}
    assert big.member_count == 1
    assert members(any_buyer) == {"a@x.io", "b@x.io"}


def test_event_changes_reach_segments_after_commit(workspace, django_capture_on_commit_callbacks):
    """Committing a purchase re-evaluates its contact in the workspace's segments (in-process here)."""
    # given
    segment = build(
        services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(100))
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "150")])
    # then
    assert members(segment) == {"a@x.io"}
    # when the purchase is soft-deleted
    with django_capture_on_commit_callbacks(execute=True):
        events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "150", deleted=True)])
    # then
    assert members(segment) == set()


def test_rolling_window_members_age_out_on_a_scheduled_refresh(workspace):
    """A contact leaves 'bought in the last 30 days' once the purchase is older, with no new event."""
    # given
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "50", days_ago=29)])
    tree = all_of(goal_leaf("count", "gte", 1, timeframe="in_the_last_days", days=30))
    segment = build(services.segment_create(workspace_id=workspace.id, slug="recent", name="Recent", tree=tree))
    assert members(segment) == {"a@x.io"}
    # when two days pass and the scheduler re-evaluates
    later = timezone.now() + timedelta(days=2)
    due = services.segments_due_for_refresh(now=later)
    assert (segment.pk, segment.version) in due
    build(segment, now=later)
    # then
    assert members(segment) == set()


def test_segment_references_are_checked_for_existence_and_cycles(workspace):
    """A tree may use another segment, never an unknown one, and never itself through a chain."""
    # given
    services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(100))
    uses_big = all_of(segment_leaf("big"))
    services.segment_create(workspace_id=workspace.id, slug="vip_of_big", name="VIP", tree=uses_big)
    unknown = all_of(segment_leaf("nope"))
    back = all_of(segment_leaf("vip_of_big"))
    # when / then
    with pytest.raises(services.SegmentError, match="Unknown segment"):
        services.segment_create(workspace_id=workspace.id, slug="x", name="X", tree=unknown)
    with pytest.raises(services.SegmentError, match="depend on itself"):
        services.segment_update(segment=Segment.objects.get(slug="big"), tree=back)
    with pytest.raises(services.SegmentError, match="Used by other segments"):
        services.segment_delete(segment=Segment.objects.get(slug="big"))


def test_contacts_changing_close_together_are_refreshed_together(workspace):
    """Queued contacts are claimed in one batch (bounded), evaluated together, and each queued once."""
    # given two buyers queued (b twice) while a segment waits for them
    big = build(services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(100)))
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "500"), purchase("b@x.io", "o2", "500")])
    a, b = Contact.objects.get(email="a@x.io"), Contact.objects.get(email="b@x.io")
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[a.pk, b.pk])
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[b.pk])
    # when a bounded claim takes one, then the rest
    first, more_after_first = refresh.contacts_refresh_pending(workspace_id=workspace.id, limit=1)
    second, more_after_second = refresh.contacts_refresh_pending(workspace_id=workspace.id, limit=10)
    # then
    assert (first, more_after_first) == (1, True)
    assert (second, more_after_second) == (1, False)
    assert members(big) == {"a@x.io", "b@x.io"}
    assert refresh.contacts_refresh_pending(workspace_id=workspace.id) == (0, False)


def test_the_periodic_task_drains_queues_whose_drain_was_lost(workspace):
    """Contacts queued over a minute ago (their drain's publish was lost) are drained on the schedule."""
    # given a buyer queued two minutes ago whose drain never ran, and a fresh entry elsewhere
    big = build(services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(100)))
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "500")])
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[Contact.objects.get(email="a@x.io").pk])
    PendingContactRefresh.objects.update(queued_at=timezone.now() - timedelta(minutes=2))
    other = workspace_create(workspace_id="other", name="Other")
    events_upsert(workspace_id=other.id, events=[purchase("z@x.io", "o1", "500")])
    refresh.contacts_queue_refresh(workspace_id=other.id, contact_ids=[Contact.objects.get(email="z@x.io").pk])
    assert members(big) == set()
    # when the periodic task runs
    contacts_refresh_stale_task()
    # then the stale queue is drained into the segment; the fresh one is left to its own drain
    assert members(big) == {"a@x.io"}
    assert not PendingContactRefresh.objects.filter(workspace_id=workspace.id).exists()
    assert PendingContactRefresh.objects.filter(workspace_id=other.id).count() == 1


def test_a_contact_changing_again_during_its_evaluation_is_queued_again(workspace):
    """A drain's claim is committed before it evaluates; a change arriving meanwhile re-queues the
    contact, and the drain's clean-up leaves it for the next drain instead of dropping it."""
    # given a drain has claimed a (and is evaluating a snapshot without a's next purchase)
    big = build(services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(100)))
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "50")])
    a = Contact.objects.get(email="a@x.io")
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[a.pk])
    token, claimed = refresh._claim_pending(workspace.id, 10, timezone.now())
    assert claimed == [a.pk]
    # when a buys again meanwhile, and the drain then finishes
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o2", "500")])
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[a.pk])
    refresh._release_claim(workspace.id, token, done=True)
    # then a is still queued, unclaimed, and the next drain applies the purchase
    assert list(PendingContactRefresh.objects.values_list("contact_id", "claim_token")) == [(a.pk, "")]
    assert refresh.contacts_refresh_pending(workspace_id=workspace.id) == (1, False)
    assert members(big) == {"a@x.io"}


def test_a_claim_whose_worker_died_is_taken_again_after_its_lease(workspace):
    """Claimed rows are invisible to other drains until the lease expires, then drained."""
    # given a claim whose drain never finished
    big = build(services.segment_create(workspace_id=workspace.id, slug="big", name="Big", tree=spent_at_least(100)))
    events_upsert(workspace_id=workspace.id, events=[purchase("a@x.io", "o1", "500")])
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[Contact.objects.get(email="a@x.io").pk])
    refresh._claim_pending(workspace.id, 10, timezone.now())
    # when another drain runs within the lease, and again after it
    within = refresh.contacts_refresh_pending(workspace_id=workspace.id)
    PendingContactRefresh.objects.update(claimed_at=timezone.now() - refresh.CLAIM_LEASE - timedelta(seconds=1))
    after = refresh.contacts_refresh_pending(workspace_id=workspace.id)
    # then
    assert within == (0, False)
    assert after == (1, False)
    assert members(big) == {"a@x.io"}
    assert not PendingContactRefresh.objects.exists()
