"""The bench dataset: a seeded, deterministic shop history, loaded through the app's own bulk path.

Same (seed, contacts, events, anchor day) -> same contacts and events. The mix: every contact's
first event is a sign-up (70%), a lead (20%) or a page view; the rest are mostly purchases with
log-normal (skewed) values, ~5% refunds (negative values), subscriptions, leads, sign-ups and
events without a goal, over two years; a few heavy contacts carry 10,000+ events each (one with
~events/10 on small sizes); 1% of events are soft-deleted. Contacts churn (a third stop buying
at some point) and more of them arrive recently, so the RFM segments all have members.

Events are kept as compact tuples (a million of them fit in a few hundred MB) and loaded in time
order with ``contacts.services.events_upsert`` in batches of 50 - the path the API and
``import_events`` use - by forked worker processes that each take every n-th batch.
"""

from __future__ import annotations

import bisect
import itertools
import multiprocessing as mp
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

BATCH_SIZE = 50
# Re-analyse the tables whenever they grew by this factor (autovacuum's default is 10%).
ANALYZE_GROWTH = 1.2
HISTORY_SECONDS = 730 * 24 * 3600
SEED = 20261128

# Event kinds: (event_name, external id prefix, goal_type or None).
KINDS: tuple[tuple[str, str, str | None], ...] = (
    ("order.completed", "ord", "purchase"),
    ("order.refunded", "ref", "purchase"),
    ("subscription.renewed", "sub", "subscription"),
    ("lead.created", "lead", "lead"),
    ("user.signup", "sig", "signup"),
    ("page.viewed", "pv", None),
    ("email.clicked", "ec", None),
    ("cart.updated", "cart", None),
)
PURCHASE, REFUND, SUBSCRIPTION, LEAD, SIGNUP, PAGE, EMAIL, CART = range(len(KINDS))
# Mix of the events after each contact's first one.
MIX = (
    (PURCHASE, 0.62),
    (REFUND, 0.055),
    (SUBSCRIPTION, 0.08),
    (LEAD, 0.03),
    (SIGNUP, 0.015),
    (PAGE, 0.12),
    (EMAIL, 0.05),
    (CART, 0.03),
)
PLAN_CENTS = (900, 2900, 9900)
CURRENCIES = ("EUR", "USD", "GBP")
PAGES = ("/", "/pricing", "/products/kettle", "/products/teapot", "/checkout")
CAMPAIGNS = ("welcome", "spring-sale", "black-friday", "winback")


class Event(NamedTuple):
    """One generated event, compact: times in seconds before the anchor, money in cents."""

    ago: int  # occurred_at = anchor - ago seconds
    contact: int
    kind: int
    cents: int
    deleted_after: int  # 0: live; else deleted_at = occurred_at + this many seconds (capped at anchor)
    serial: int


@dataclass(frozen=True)
class Spec:
    contacts: int
    events: int
    heavy_contacts: int
    heavy_events: int
    seed: int = SEED

    @classmethod
    def for_size(cls, contacts: int, events: int, seed: int = SEED) -> Spec:
        if events >= 200_000:
            heavy, per_heavy = 3, 10_000
        else:
            heavy, per_heavy = 1, max(1, events // 10)
        heavy = min(heavy, contacts)
        per_heavy = min(per_heavy, max(0, (events - contacts) // max(heavy, 1)))
        return cls(contacts=contacts, events=events, heavy_contacts=heavy, heavy_events=per_heavy, seed=seed)


def contact_email(index: int, heavy_contacts: int) -> str:
    return f"heavy{index}@bench.example" if index < heavy_contacts else f"c{index:07d}@bench.example"


def anchor_for(day: datetime) -> datetime:
    return day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _money_cents(rng: random.Random) -> int:
    # Log-normal basket values: many small orders, a long tail of large ones (median ~45).
    return max(100, min(500_000, int(rng.lognormvariate(3.8, 1.0) * 100)))


def generate(spec: Spec) -> list[Event]:
    """All events of the dataset, sorted by time (oldest first), deterministic for a spec."""
    rng = random.Random(spec.seed)
    n, heavy = spec.contacts, spec.heavy_contacts
    # Each contact: first seen (more arrive recently), last active (a third churned), activity weight.
    first_seen: list[int] = []
    last_seen: list[int] = []
    weights: list[float] = []
    for index in range(n):
        if index < heavy:
            first_seen.append(HISTORY_SECONDS)
            last_seen.append(0)
            weights.append(0.0)
            continue
        ago = int(HISTORY_SECONDS * (1 - rng.random() ** 0.7))
        first_seen.append(ago)
        last_seen.append(int(ago * rng.random()) if rng.random() < 0.35 else 0)
        weights.append(min(200.0, rng.paretovariate(1.2)))

    events: list[Event] = []
    serial = itertools.count(1)

    def deleted_after() -> int:
        return rng.randint(3600, 240 * 3600) if rng.random() < 0.01 else 0

    def make(contact: int, kind: int) -> Event:
        ago = rng.randint(last_seen[contact], first_seen[contact])
        if kind in (PURCHASE, REFUND):
            cents = _money_cents(rng) * (-1 if kind == REFUND else 1)
        elif kind == SUBSCRIPTION:
            cents = rng.choice(PLAN_CENTS)
        else:
            cents = 0
        return Event(ago, contact, kind, cents, deleted_after(), next(serial))

    # Every contact exists: its first event, at its first sighting.
    for contact in range(n):
        if len(events) == spec.events:
            break
        u = rng.random()
        kind = SIGNUP if u < 0.7 else LEAD if u < 0.9 else PAGE
        events.append(Event(first_seen[contact], contact, kind, 0, deleted_after(), next(serial)))

    kinds = [k for k, _ in MIX]
    mix_weights = list(itertools.accumulate(w for _, w in MIX))
    for contact in range(heavy):
        for kind in rng.choices(kinds, cum_weights=mix_weights, k=spec.heavy_events):
            if len(events) < spec.events:
                events.append(make(contact, kind))

    remaining = spec.events - len(events)
    if remaining > 0 and n > heavy:
        cum = list(itertools.accumulate(weights))
        total = cum[-1]
        picks = [bisect.bisect_right(cum, rng.random() * total) for _ in range(remaining)]
        for contact, kind in zip(picks, rng.choices(kinds, cum_weights=mix_weights, k=remaining), strict=True):
            events.append(make(min(contact, n - 1), kind))

    events.sort(key=lambda e: (-e.ago, e.serial))
    return events


# properties_for depends on the serial only through serial % PROPERTY_PERIOD (lcm of the cycles
# below), but for a purchase's order_id (bench/bulk.py relies on this).
PROPERTY_PERIOD = 420


def properties_for(kind: int, serial: int) -> dict[str, Any]:
    if kind in (PURCHASE, REFUND):
        return {"currency": CURRENCIES[serial % 3], "items": 1 + serial % 5, "order_id": f"o{serial}"}
    if kind == SUBSCRIPTION:
        return {"plan": ("starter", "pro", "business")[serial % 3], "interval": "month"}
    if kind == PAGE:
        return {"path": PAGES[serial % len(PAGES)]}
    if kind == EMAIL:
        return {"campaign": CAMPAIGNS[serial % len(CAMPAIGNS)]}
    if kind == CART:
        return {"items": 1 + serial % 7}
    return {"form": "footer"} if kind == LEAD else {"method": "email"}


def goal_for(kind: int, cents: int) -> dict[str, Any]:
    name, _, goal_type = KINDS[kind]
    if goal_type is None:
        return {}
    goal: dict[str, Any] = {"goal_type": goal_type, "goal_name": name.split(".")[0].title()}
    if kind in (PURCHASE, REFUND, SUBSCRIPTION):
        goal["goal_value"] = Decimal(cents).scaleb(-2)
    return goal


def event_input(event: Event, spec: Spec, anchor: datetime) -> Any:
    from contacts.models import CustomEvent
    from contacts.services import EventInput

    name, prefix, _ = KINDS[event.kind]
    occurred_at = anchor - timedelta(seconds=event.ago)
    deleted_at = min(anchor, occurred_at + timedelta(seconds=event.deleted_after)) if event.deleted_after else None
    return EventInput(
        email=contact_email(event.contact, spec.heavy_contacts),
        event_name=name,
        external_id=f"{prefix}-{event.serial:08d}",
        occurred_at=occurred_at,
        properties=properties_for(event.kind, event.serial),
        source=CustomEvent.Source.IMPORT,
        goal=goal_for(event.kind, event.cents),
        deleted_at=deleted_at,
    )


# ---------------------------------------------------------------------------------------
# Loading through events_upsert, in forked workers
# ---------------------------------------------------------------------------------------

# Set in the parent before forking; the children read it copy-on-write.
_SHARED: dict[str, Any] = {}


def _load_worker(worker: int, workers: int, done: Any) -> None:
    from django.db import connections

    from contacts.services import events_upsert

    connections.close_all()  # never share the parent's connection
    events: list[Event] = _SHARED["events"]
    spec: Spec = _SHARED["spec"]
    anchor: datetime = _SHARED["anchor"]
    workspace_id: str = _SHARED["workspace_id"]
    batches = range(worker, (len(events) + BATCH_SIZE - 1) // BATCH_SIZE, workers)
    for index in batches:
        chunk = events[index * BATCH_SIZE : (index + 1) * BATCH_SIZE]
        events_upsert(workspace_id=workspace_id, events=[event_input(e, spec, anchor) for e in chunk])
        with done.get_lock():
            done.value += len(chunk)
    connections.close_all()


def load(*, workspace_id: str, spec: Spec, anchor: datetime, workers: int, progress: Any) -> dict[str, Any]:
    """Generate and load the dataset; returns timings. ``progress`` is a tqdm factory."""
    from django.db import connections

    started = time.perf_counter()
    events = generate(spec)
    generated = time.perf_counter() - started
    _SHARED.update(events=events, spec=spec, anchor=anchor, workspace_id=workspace_id)
    connections.close_all()
    ctx = mp.get_context("fork")
    done = ctx.Value("q", 0)
    procs = [ctx.Process(target=_load_worker, args=(w, workers, done), daemon=True) for w in range(workers)]
    load_started = time.perf_counter()
    for proc in procs:
        proc.start()
    analyzed_at, analyzes = 0, 0
    with progress(total=len(events), desc=f"load ({workers} workers, events_upsert x{BATCH_SIZE})", unit="ev") as bar:
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            bar.update(done.value - bar.n)
            if done.value >= max(2_000, analyzed_at * ANALYZE_GROWTH):
                analyzed_at = done.value
                analyzes += 1
                _analyze()
        bar.update(done.value - bar.n)
    for proc in procs:
        proc.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"loader workers failed with exit codes {failed}")
    seconds = time.perf_counter() - load_started
    _SHARED.clear()
    return {
        "generate_s": round(generated, 2),
        "load_s": round(seconds, 1),
        "events": len(events),
        "batches": (len(events) + BATCH_SIZE - 1) // BATCH_SIZE,
        "workers": workers,
        "events_per_s": round(len(events) / seconds, 1) if seconds else None,
        "analyzes_during_load": analyzes,
    }


def _analyze() -> None:
    """What autovacuum would do as the tables grow (the bench's PostgreSQL may run with it off).

    Without statistics the planner has no idea the tables grew and picks sequential scans for
    the per-batch lookups, and the load slows down as the tables grow.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact, contacts_customevent, contacts_timelineentry")


# ---------------------------------------------------------------------------------------
# Events for the ingest figure (a separate workspace, keys unique per run)
# ---------------------------------------------------------------------------------------


def ingest_payloads(*, tag: str, count: int, emails: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """API-shaped events (the JSON a client sends), deterministic for (tag, count, emails)."""
    rng = random.Random(f"{seed}-{tag}")
    now = datetime.now(UTC).replace(microsecond=0)
    kinds = [k for k, _ in MIX]
    mix_weights = list(itertools.accumulate(w for _, w in MIX))
    for serial, kind in enumerate(rng.choices(kinds, cum_weights=mix_weights, k=count)):
        name, prefix, goal_type = KINDS[kind]
        payload: dict[str, Any] = {
            "email": f"{tag}-{rng.randrange(emails)}@ingest.example",
            "event_name": name,
            "external_id": f"{tag}-{prefix}-{serial}",
            "occurred_at": (now - timedelta(seconds=rng.randrange(86400 * 30))).isoformat().replace("+00:00", "Z"),
            "properties": properties_for(kind, serial),
        }
        if goal_type is not None:
            goal = goal_for(kind, _money_cents(rng) * (-1 if kind == REFUND else 1))
            if kind == SUBSCRIPTION:
                goal["goal_value"] = Decimal(PLAN_CENTS[serial % 3]).scaleb(-2)
            payload.update({k: float(v) if isinstance(v, Decimal) else v for k, v in goal.items()})
        yield payload


def batched(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
