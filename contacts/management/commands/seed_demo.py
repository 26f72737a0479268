"""``manage.py seed_demo``: a demo workspace with two years of realistic customer activity.

Everything is written through the services (``contact_upsert``, then ``events_upsert`` in
batches of 50 with ``source="import"``), so the data has its timeline entries and the segment
engine hears of it like any other import. The data is a pure function of the arguments and of
the workspace's creation day: re-running it upserts the very same events, which come back
"unchanged", so the command is safe to run again.

Besides the heavy-tailed regulars, a few customers lapsed 3 to 12 months ago after buying a lot,
and a few arrived in the last four weeks with a first order over 200, so that each of the
segment templates (VIP, At-Risk High-Value, New High-Potential) has members on the demo data.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from contacts.models import CustomEvent, GoalType
from contacts.services import EventInput, contact_upsert, events_upsert
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import workspace_create

BATCH_SIZE = 50
HISTORY = timedelta(days=730)

FIRST_NAMES = (  # noqa: SIM905 (a word list reads better as text)
    "Alice Bob Chloé Daniel Emma Farid Giulia Hugo Inès Jonas Karin Léo Maya Noah Olga Pablo Quentin Rosa "
    "Sami Tara Ugo Vera William Xenia Yusuf Zoé Aïcha Bruno Clara Diego Elena Felix Grace Hana Ivan Julia"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Martin Bernard Dubois Rossi Müller Schmidt García López Silva Santos Nowak Kowalski Jensen Nielsen "
    "Smith Johnson Brown Taylor Wilson Moreau Laurent Petit Romano Costa Novak Horvat Yilmaz Kaya Ivanova"
).split()
COUNTRIES = (("FR", 0.35), ("DE", 0.2), ("GB", 0.15), ("US", 0.15), ("ES", 0.1), ("IT", 0.05))
CURRENCIES = (("EUR", 0.6), ("USD", 0.3), ("GBP", 0.1))
PLANS = (("starter", Decimal("9.00")), ("pro", Decimal("29.00")), ("business", Decimal("99.00")))
PAGES = ("/", "/pricing", "/blog/rfm-segments", "/products/kettle", "/products/teapot", "/checkout")
CAMPAIGNS = ("welcome", "spring-sale", "black-friday", "newsletter-42", "winback")


@dataclass(frozen=True)
class DemoContact:
    index: int
    email: str
    first_name: str
    last_name: str
    country: str
    first_seen: datetime
    activity: float  # relative share of the activity events (heavy-tailed, like real customers)
    # Nothing happens after this moment: "lapsed" customers stopped 3 to 12 months ago.
    active_until: datetime
    # A newcomer arrived in the last four weeks with a first order over 200.
    newcomer: bool = False


LAPSED_SHARE = 0.08
NEWCOMER_SHARE = 0.05


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _strip_accents(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def demo_contacts(rng: random.Random, count: int, anchor: datetime) -> list[DemoContact]:
    contacts = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # More customers arrive recently than two years ago (a growing shop).
        first_seen = anchor - HISTORY * (1 - rng.random() ** 0.7)
        activity = rng.paretovariate(1.3)
        active_until, newcomer = anchor, False
        persona = rng.random()
        if persona < LAPSED_SHARE:
            # Used to buy a lot, then went quiet 3 to 12 months ago (the at-risk customers).
            active_until = anchor - timedelta(days=rng.randint(95, 365))
            first_seen = min(first_seen, active_until - timedelta(days=rng.randint(60, 300)))
            activity *= 4
        elif persona < LAPSED_SHARE + NEWCOMER_SHARE:
            first_seen = anchor - timedelta(days=rng.randint(1, 27), hours=rng.randint(0, 23))
            newcomer = True
        contacts.append(
            DemoContact(
                index=index,
                email=_strip_accents(f"{first}.{last}.{index}@example.com").lower(),
                first_name=first,
                last_name=last,
                country=_weighted(rng, COUNTRIES),
                first_seen=first_seen,
                activity=activity,
                active_until=active_until,
                newcomer=newcomer,
            )
        )
    return contacts


class _EventFactory:
    def __init__(self, rng: random.Random, anchor: datetime) -> None:
        self.rng = rng
        self.anchor = anchor

    def moment(self, contact: DemoContact, *, after: datetime | None = None) -> datetime:
        start = max(after or contact.first_seen, contact.first_seen)
        span = max((contact.active_until - start).total_seconds(), 0)
        return (start + timedelta(seconds=self.rng.random() * span)).replace(microsecond=0)

    def event(
        self, contact: DemoContact, name: str, external_id: str, at: datetime, *, goal: dict[str, Any] | None = None,
        **properties: Any,
    ) -> EventInput:  # fmt: skip
        deleted_at = None
        if self.rng.random() < 0.01:  # ~1% were soft deleted later (mistakes, GDPR requests...)
            deleted_at = min(self.anchor, at + timedelta(hours=self.rng.randint(1, 240)))
        return EventInput(
            email=contact.email,
            event_name=name,
            external_id=external_id,
            occurred_at=at,
            properties=properties,
            source=CustomEvent.Source.IMPORT,
            goal=goal or {},
            deleted_at=deleted_at,
        )


def demo_events(
    rng: random.Random, contacts: Sequence[DemoContact], total: int, anchor: datetime
) -> Iterator[EventInput]:
    """Exactly ``total`` events: each contact's life cycle first, then purchases and engagement."""
    if not contacts:
        return
    make = _EventFactory(rng, anchor)
    produced = 0

    def lifecycle() -> Iterator[EventInput]:
        for c in contacts:
            if c.newcomer:
                # Their very first order, the moment they arrived: a big one (new high potential).
                value = Decimal(str(round(rng.uniform(210, 650), 2)))
                yield make.event(
                    c, "order.completed", f"ord-first-{c.index:06d}", c.first_seen,
                    goal={"goal_type": GoalType.PURCHASE, "goal_name": "Order", "goal_value": value},
                    currency=_weighted(rng, CURRENCIES), items=rng.randint(1, 5), order_id=f"ord-first-{c.index:06d}",
                )  # fmt: skip
            if rng.random() < 0.3:
                yield make.event(
                    c, "lead.created", f"lead-{c.index:06d}", c.first_seen,
                    goal={"goal_type": GoalType.LEAD, "goal_name": rng.choice(["Newsletter", "Demo request"])},
                    form=rng.choice(["footer", "popup", "landing"]),
                )  # fmt: skip
            if rng.random() < 0.7:
                signed_up = make.moment(c)
                yield make.event(
                    c, "user.signup", f"signup-{c.index:06d}", signed_up,
                    goal={"goal_type": GoalType.SIGNUP, "goal_name": "Account"}, method=rng.choice(["email", "google"]),
                )  # fmt: skip
                if rng.random() < 0.18:
                    plan, price = rng.choice(PLANS)
                    yield make.event(
                        c, "subscription.started", f"sub-{c.index:06d}", make.moment(c, after=signed_up),
                        goal={"goal_type": GoalType.SUBSCRIPTION, "goal_name": plan, "goal_value": price},
                        plan=plan, interval="month", currency="EUR",
                    )  # fmt: skip

    for incoming in lifecycle():
        if produced == total:
            return
        produced += 1
        yield incoming

    weights = [c.activity for c in contacts]
    serial = 0
    while produced < total:
        serial += 1
        contact = rng.choices(contacts, weights=weights)[0]
        at = make.moment(contact)
        kind = rng.random()
        if kind < 0.45:
            currency = _weighted(rng, CURRENCIES)
            # Log-normal basket values: many small orders, a long tail of large ones.
            value = Decimal(str(round(min(2500.0, rng.lognormvariate(3.7, 0.9)), 2)))
            order_id = f"ord-{serial:07d}"
            goal = {"goal_type": GoalType.PURCHASE, "goal_name": "Order", "goal_value": value}
            yield make.event(
                contact, "order.completed", order_id, at, goal=goal,
                currency=currency, items=rng.randint(1, 5), order_id=order_id,
            )  # fmt: skip
            produced += 1
            if produced < total and rng.random() < 0.05:
                refunded_at = min(contact.active_until, at + timedelta(days=rng.randint(1, 20)))
                goal = {"goal_type": GoalType.PURCHASE, "goal_name": "Refund", "goal_value": -value}
                yield make.event(
                    contact, "order.refunded", order_id, refunded_at, goal=goal,
                    currency=currency, order_id=order_id, reason=rng.choice(["damaged", "late", "changed mind"]),
                )  # fmt: skip
                produced += 1
        elif kind < 0.8:
            yield make.event(contact, "page.viewed", f"pv-{serial:07d}", at, path=rng.choice(PAGES))
            produced += 1
        else:
            yield make.event(contact, "email.clicked", f"ec-{serial:07d}", at, campaign=rng.choice(CAMPAIGNS))
            produced += 1


def output_stream(wrapper: Any) -> TextIO:
    """The raw stream behind a command's OutputWrapper: tqdm needs writes without added newlines."""
    stream: TextIO = getattr(wrapper, "_out", wrapper)
    return stream


class Command(BaseCommand):
    help = "Create (or top up) the demo workspace with two years of purchases, refunds, subscriptions and more."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=int, default=500)
        parser.add_argument("--events", type=int, default=5000)
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--seed", type=int, default=42, help="Random seed: same arguments, same data.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["contacts"] < 1 or options["events"] < 0:
            raise CommandError("--contacts must be at least 1 and --events at least 0.")
        workspace = self._workspace(options["workspace"])
        # The data is anchored on the workspace's creation day, not on "now", so that a re-run
        # produces identical events (same occurred_at) and the upsert leaves them unchanged.
        anchor = workspace.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
        rng = random.Random(options["seed"])
        contacts = demo_contacts(rng, options["contacts"], anchor)
        progress: dict[str, Any] = {
            "file": output_stream(self.stderr),
            "disable": True if options["verbosity"] == 0 else None,
        }

        contact_counts: Counter[str] = Counter()
        for c in tqdm(contacts, desc="contacts", unit="contact", **progress):
            fields = {"first_name": c.first_name, "last_name": c.last_name, "properties": {"country": c.country}}
            result = contact_upsert(workspace_id=workspace.id, email=c.email, fields=fields)
            contact_counts[result.operation] += 1

        event_counts: Counter[str] = Counter()
        with tqdm(total=options["events"], desc="events", unit="event", **progress) as bar:
            batch: list[EventInput] = []
            for incoming in demo_events(rng, contacts, options["events"], anchor):
                batch.append(incoming)
                if len(batch) == BATCH_SIZE:
                    self._upsert(workspace.id, batch, event_counts, bar)
                    batch = []
            if batch:
                self._upsert(workspace.id, batch, event_counts, bar)

        self.stdout.write(
            f"Workspace {workspace.id}: contacts {_summary(contact_counts)}; events {_summary(event_counts)}."
        )

    def _workspace(self, workspace_id: str) -> Workspace:
        workspace = Workspace.objects.filter(pk=workspace_id).first()
        if workspace is not None:
            return workspace
        name = "Demo shop" if workspace_id == "demo" else workspace_id
        try:
            return workspace_create(workspace_id=workspace_id, name=name, timezone_name="Europe/Paris")
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc

    def _upsert(self, workspace_id: str, batch: list[EventInput], counts: Counter[str], bar: tqdm) -> None:
        for result in events_upsert(workspace_id=workspace_id, events=batch):
            counts[result.operation] += 1
        bar.update(len(batch))


def _summary(counts: Counter[str]) -> str:
    order = ["created", "updated", "unchanged", "deleted", "restored"]
    return ", ".join(f"{counts[name]} {name}" for name in order if counts[name]) or "none"
