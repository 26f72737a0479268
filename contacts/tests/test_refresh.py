"""The refresh queue's drain hooks: who is registered, in which order they run, and that each runs
inside the drain's transaction (with the totals refresh and the claim's release)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from contacts import refresh
from contacts.models import Contact, ContactTotals, PendingContactRefresh, StoredTimelineEntry
from contacts.services import events_upsert
from contacts.tests.factories import EventInputFactory
from events_platform.workspaces.models import Workspace

Register = Callable[[str, refresh.DrainHook, refresh.Phase], None]


@pytest.fixture
def register() -> Iterator[Register]:
    """Registers drain hooks for one test, and takes them away after it."""
    names: list[str] = []

    def add(name: str, hook: refresh.DrainHook, phase: refresh.Phase) -> None:
        names.append(name)
        refresh.register_drain_hook(name, hook, phase=phase)

    yield add
    for name in names:
        refresh.unregister_drain_hook(name)


def queued_buyer(workspace: Workspace, email: str = "a@x.io") -> Contact:
    events_upsert(
        workspace_id=workspace.id,
        events=[EventInputFactory.build(email=email, goal={"goal_type": "purchase", "goal_value": Decimal("30.00")})],
    )
    contact = Contact.objects.get(email=email)
    refresh.contacts_queue_refresh(workspace_id=workspace.id, contact_ids=[contact.pk])
    return contact


def test_segments_subscribe_to_the_drain_through_a_registered_hook() -> None:
    """The segment engine's re-evaluation is a named hook of the contacts drain, not a hidden receiver."""
    # when
    names = [name for name, _ in refresh.drain_hooks()]
    # then
    assert "segments.evaluate" in names


def test_hooks_run_by_phase_then_name_after_the_totals_and_see_them(workspace: Workspace, register: Register) -> None:
    """A SCORE hook runs before the EVALUATE hooks whatever its name, each sees the totals the drain just
    wrote, and all get the same batch."""
    # given
    contact = queued_buyer(workspace)
    calls: list[tuple[str, tuple[int, ...], Decimal | None]] = []

    def recorder(name: str) -> refresh.DrainHook:
        def hook(batch: refresh.DrainedContacts) -> None:
            totals = ContactTotals.objects.filter(contact_id=contact.pk).first()
            calls.append((name, batch.contact_ids, totals.lifetime_value if totals else None))

        return hook

    register("zz.scores", recorder("zz.scores"), refresh.Phase.SCORE)
    register("aa.evaluate", recorder("aa.evaluate"), refresh.Phase.EVALUATE)
    # when
    claimed, more = refresh.contacts_refresh_pending(workspace_id=workspace.id)
    # then
    assert (claimed, more) == (1, False)
    assert calls == [("zz.scores", (contact.pk,), Decimal("30.00")), ("aa.evaluate", (contact.pk,), Decimal("30.00"))]
    order = [name for name, _ in refresh.drain_hooks()]
    assert order.index("zz.scores") < order.index("aa.evaluate") < order.index("segments.evaluate")


def test_a_failing_hook_rolls_back_every_hook_and_the_totals_and_hands_the_claim_back(
    workspace: Workspace, register: Register
) -> None:
    """What an earlier hook wrote, the totals and the claim's release commit together or not at all; the
    next drain does everything once."""
    # given a scorer that writes a timeline entry, and an evaluator that fails once
    contact = queued_buyer(workspace)
    failures = [RuntimeError("down")]

    def scorer(batch: refresh.DrainedContacts) -> None:
        StoredTimelineEntry.objects.create(
            workspace_id=batch.workspace_id,
            contact_id=batch.contact_ids[0],
            kind="test.scored",
            operation=StoredTimelineEntry.Operation.INSERT,
            entity_type="test",
            entity_id="1",
            created_at=batch.now,
        )

    def evaluator(batch: refresh.DrainedContacts) -> None:
        if failures:
            raise failures.pop()

    register("test.scorer", scorer, refresh.Phase.SCORE)
    register("test.evaluator", evaluator, refresh.Phase.EVALUATE)
    # when
    with pytest.raises(RuntimeError):
        refresh.contacts_refresh_pending(workspace_id=workspace.id)
    after_failure = (
        StoredTimelineEntry.objects.filter(kind="test.scored").count(),
        ContactTotals.objects.filter(contact_id=contact.pk).exists(),
        list(PendingContactRefresh.objects.values_list("contact_id", "claim_token")),
    )
    retried = refresh.contacts_refresh_pending(workspace_id=workspace.id)
    # then
    assert after_failure == (0, False, [(contact.pk, "")])
    assert retried == (1, False)
    assert StoredTimelineEntry.objects.filter(kind="test.scored").count() == 1
    assert ContactTotals.objects.get(contact_id=contact.pk).lifetime_value == Decimal("30.00")
    assert not PendingContactRefresh.objects.exists()


def test_registering_a_name_again_replaces_the_hook(workspace: Workspace, register: Register) -> None:
    """Registration is idempotent by name (an app's ready() may run twice in a process)."""
    # given
    queued_buyer(workspace)
    heard: list[str] = []
    register("test.hook", lambda batch: heard.append("first"), refresh.Phase.EVALUATE)
    register("test.hook", lambda batch: heard.append("second"), refresh.Phase.EVALUATE)
    # when
    refresh.contacts_refresh_pending(workspace_id=workspace.id)
    # then
    assert heard == ["second"]


def test_a_process_skips_only_the_publishes_a_drain_it_saw_covers(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """Commits every 0.1 s for 4 s in one process: it asks Redis at most once per 0.4 delay, and
    every commit has a drain published at or before it and due after it (so that drain claims
    the commit's contacts), even while skips follow one another."""
    # given: a broker, a fake Redis honouring SET NX PX, and a clock
    from contacts import tasks

    settings.REDIS_URL = "redis://fake"
    settings.SEGMENT_REFRESH_BATCH_DELAY = 1.0
    monkeypatch.setitem(tasks.contacts_refresh_pending_task.app.conf, "task_always_eager", False)
    now = [1000.0]
    marks: dict[str, float] = {}
    asked: list[float] = []
    published: list[float] = []

    class FakeRedis:
        def set(self, key: str, value: int, *, nx: bool, px: int) -> bool | None:
            asked.append(now[0])
            if marks.get(key, 0.0) > now[0]:
                return None
            marks[key] = now[0] + px / 1000
            return True

    monkeypatch.setattr(refresh, "_redis", FakeRedis)
    monkeypatch.setattr(refresh, "_clock", lambda: now[0])
    monkeypatch.setattr(refresh, "_covered_until", {})
    monkeypatch.setattr(
        tasks.contacts_refresh_pending_task, "apply_async", lambda *args, **kwargs: published.append(now[0])
    )
    # when
    commits = [1000.0 + step * 0.1 for step in range(40)]
    for at in commits:
        now[0] = at
        assert refresh.drain_schedule(workspace_id="acme")
    # then
    assert len(asked) <= 12  # not once per commit
    for at in commits:
        assert any(p <= at < p + 1.0 for p in published), (at, published)


@pytest.mark.parametrize(("queued", "batch", "at_once"), [(1, 2000, False), (2, 2, True)])
def test_the_next_drain_starts_at_once_only_after_a_full_batch(
    workspace: Workspace,
    register: Register,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    queued: int,
    batch: int,
    at_once: bool,
) -> None:
    """A contact queued by a write while a drain runs gets the next drain scheduled as a write's
    is (due a delay later, batched with the other writes'); contacts left over from a full
    batch (a backlog) get it at once. Publishing at once after every drain made a steady
    stream of writes a chain of drains, each claiming the few contacts queued during the last."""
    from contacts import tasks

    # given: no Redis mark (every schedule publishes), a hook that queues a contact mid-drain
    settings.REDIS_URL = ""
    settings.SEGMENT_REFRESH_BATCH_DELAY = 0.5
    monkeypatch.setattr(refresh, "PENDING_BATCH", batch)
    buyers = [queued_buyer(workspace, f"b{i}@x.io") for i in range(queued)]
    late = queued_buyer(workspace, "late@x.io")
    PendingContactRefresh.objects.filter(contact_id=late.pk).delete()

    def write_meanwhile(drained: refresh.DrainedContacts) -> None:
        refresh.contacts_queue_refresh(workspace_id=drained.workspace_id, contact_ids=[late.pk])

    register("write-meanwhile", write_meanwhile, refresh.Phase.SCORE)
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.contacts_refresh_pending_task, "apply_async", lambda *args, **kwargs: published.append(kwargs)
    )
    # when
    claimed = tasks.contacts_refresh_pending_task(workspace.id)
    # then
    assert claimed == len(buyers)
    assert list(PendingContactRefresh.objects.values_list("contact_id", flat=True)) == [late.pk]
    assert published == ([{}] if at_once else [{"countdown": 0.5}])
