"""Marketer pages of the contacts app: contacts list, contact page with its timeline, events list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from contacts import selectors, views
from contacts.models import Contact, CustomEvent
from contacts.services import EventInput, contact_upsert, event_set_deleted, events_upsert
from contacts.tests.conftest import AfterCommit
from contacts.tests.factories import EventInputFactory, WorkspaceFactory, events_create
from events_platform.workspaces.models import Workspace

# Fixed maxima, checked with few and many rows: the point is that they do not grow.
LIST_MAX_QUERIES = 5  # session, user, workspaces, contacts page (stored totals joined), segment choices
# session, user, workspaces, contact, kinds, timeline, the events' later entries (insert entries'
# changes), summary, segment chips, panels (RFM: scores, changes)
CONTACT_MAX_QUERIES = 11
TIMELINE_FRAGMENT_MAX_QUERIES = 6  # session, user, workspaces, contact, timeline, the events' later entries
EVENTS_MAX_QUERIES = 4  # session, user, workspaces, events page with their contacts
NOW = timezone.now()


def goal_tree(aggregate: str = "count", value: int = 1) -> dict[str, Any]:
    """A segment rule on purchases (anytime), e.g. count >= 1: "has bought"."""
    from segments.tests.trees import goal_leaf  # test-only: the app never imports upward

    return goal_leaf(aggregate, "gte", value)


@pytest.fixture
def other_workspace(db: None) -> Workspace:
    return WorkspaceFactory.create(id="globex", name="Globex")


def purchase(email: str, value: str, *, days_ago: float = 1, name: str = "order.completed", **props: Any) -> EventInput:
    return EventInputFactory.build(
        email=email,
        event_name=name,
        occurred_at=NOW - timedelta(days=days_ago),
        properties={"currency": "EUR", **props},
        goal={"goal_type": "purchase", "goal_value": Decimal(value)},
    )


def page_view(email: str, *, days_ago: float = 1, **props: Any) -> EventInput:
    return EventInputFactory.build(
        email=email, event_name="page.viewed", occurred_at=NOW - timedelta(days=days_ago), properties=props, goal={}
    )


def emails_in(html: str) -> list[str]:
    return re.findall(r'class="contact-email">([^<]+)<', html)


# ---------------------------------------------------------------------------------------
# Access
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/contacts/", "/events/"])
def test_pages_require_login(client: Client, workspace: Workspace, url: str) -> None:
    """An anonymous visitor is sent to the login page."""
    # when
    response = client.get(url)
    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_user_without_workspace_gets_a_clear_403(client: Client, django_user_model: Any, workspace: Workspace) -> None:
    """A signed-in user who belongs to no workspace sees the "no workspace" page, no data."""
    # given
    events_create(workspace, [purchase("a@example.com", "10")])
    client.force_login(django_user_model.objects.create_user(username="outsider", password="x"))
    # when
    response = client.get("/contacts/")
    # then
    assert response.status_code == 403
    assert b"a@example.com" not in response.content


def test_contact_and_event_pages_of_another_workspace_are_404(
    member_client: Client, other_workspace: Workspace
) -> None:
    """A member of one workspace can neither open a contact of another nor see its contacts or events listed."""
    # given
    events_create(other_workspace, [purchase("secret@globex.com", "99", name="globex.order")])
    foreign = Contact.objects.get(workspace=other_workspace)
    # when
    detail = member_client.get(f"/contacts/{foreign.pk}/")
    listing = member_client.get("/contacts/")
    events = member_client.get("/events/?deleted=all")
    # then
    assert detail.status_code == 404
    assert b"secret@globex.com" not in listing.content
    assert b"secret@globex.com" not in events.content and b"globex.order" not in events.content


def test_workspace_in_session_that_user_left_is_not_shown(member_client: Client, other_workspace: Workspace) -> None:
    """Putting another workspace's id in the session does not open it: membership is checked per request."""
    # given
    events_create(other_workspace, [purchase("secret@globex.com", "99")])
    session = member_client.session
    session["workspace_id"] = other_workspace.id
    session.save()
    # when
    response = member_client.get("/contacts/")
    # then
    assert response.status_code == 200
    assert b"secret@globex.com" not in response.content


# ---------------------------------------------------------------------------------------
# Contacts list
# ---------------------------------------------------------------------------------------


def test_contact_list_shows_net_lifetime_value_orders_and_last_event(
    member_client: Client, workspace: Workspace, after_commit: AfterCommit
) -> None:
    """Lifetime value subtracts refunds, orders count only positive live purchases, deleted events are ignored."""
    # given
    with after_commit():
        events_create(
            workspace,
            [
                purchase("ann@example.com", "100.00", days_ago=3),
                purchase("ann@example.com", "50.00", days_ago=2),
                purchase("ann@example.com", "-30.00", days_ago=1, name="order.refunded"),
                page_view("ann@example.com", days_ago=0.5),
            ],
        )
        doomed = purchase("ann@example.com", "1000.00", days_ago=0.1)
        events_create(workspace, [doomed])
    with after_commit():
        event_set_deleted(event=CustomEvent.objects.get(external_id=doomed.external_id), deleted=True)
    # when
    response = member_client.get("/contacts/")
    # then
    contact = response.context["page"].items[0]
    assert contact.lifetime_value == Decimal("120.00")
    assert contact.order_count == 2
    assert contact.last_event_at == NOW - timedelta(days=0.5)
    assert b"120.00" in response.content


def test_contact_list_searches_email_and_name(member_client: Client, workspace: Workspace) -> None:
    """Every word of the search must appear in the email, first or last name (case-insensitive)."""
    # given
    contact_upsert(
        workspace_id=workspace.id, email="jane@example.com", fields={"first_name": "Jane", "last_name": "Doe"}
    )
    contact_upsert(
        workspace_id=workspace.id, email="john@example.com", fields={"first_name": "John", "last_name": "Doe"}
    )
    contact_upsert(workspace_id=workspace.id, email="zed@other.org", fields={})
    # when
    by_name = member_client.get("/contacts/?q=jane+DOE")
    by_email = member_client.get("/contacts/?q=other.org")
    by_last_name = member_client.get("/contacts/?q=doe")
    # then
    assert emails_in(by_name.content.decode()) == ["jane@example.com"]
    assert emails_in(by_email.content.decode()) == ["zed@other.org"]
    assert sorted(emails_in(by_last_name.content.decode())) == ["jane@example.com", "john@example.com"]
    assert 'value="jane DOE"' in by_name.content.decode()  # the search box keeps the input


def test_contact_list_filters_by_segment(member_client: Client, workspace: Workspace) -> None:
    """?segment=<slug> lists the segment's members only; the segment appears in the filter's choices."""
    from segments.services import segment_build, segment_create  # test-only: the app never imports upward

    # given
    events_create(workspace, [purchase("buyer@example.com", "10")])
    contact_upsert(workspace_id=workspace.id, email="browser@example.com", fields={})
    segment = segment_create(workspace_id=workspace.id, slug="buyers", name="Buyers", tree=goal_tree())
    assert segment_build(segment_pk=segment.pk, version=segment.version)
    # when
    response = member_client.get("/contacts/?segment=buyers")
    # then
    assert emails_in(response.content.decode()) == ["buyer@example.com"]
    assert '<option value="buyers" selected>Buyers</option>' in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-ltv", ["big@x.io", "mid@x.io", "refunded@x.io", "none@x.io"]),
        ("ltv", ["none@x.io", "refunded@x.io", "mid@x.io", "big@x.io"]),
        ("-orders", ["refunded@x.io", "mid@x.io", "big@x.io", "none@x.io"]),
        ("-last_event", ["mid@x.io", "big@x.io", "refunded@x.io", "none@x.io"]),
        ("last_event", ["none@x.io", "refunded@x.io", "big@x.io", "mid@x.io"]),
    ],
)
def test_contact_list_sorts_by_computed_columns(
    member_client: Client, workspace: Workspace, after_commit: AfterCommit, sort: str, expected: list[str]
) -> None:
    """Sorting by lifetime value, orders and last event; a contact without events sorts as the smallest."""
    # given
    events = [
        purchase("big@x.io", "500", days_ago=2),
        purchase("mid@x.io", "100", days_ago=1),
        purchase("mid@x.io", "100", days_ago=1.5),
        purchase("refunded@x.io", "80", days_ago=5),
        purchase("refunded@x.io", "80", days_ago=4),
        purchase("refunded@x.io", "80", days_ago=3.5),
        purchase("refunded@x.io", "-200", days_ago=3, name="order.refunded"),
    ]
    with after_commit():
        events_create(workspace, events)
        contact_upsert(workspace_id=workspace.id, email="none@x.io", fields={})
    # when
    response = member_client.get(f"/contacts/?sort={sort}")
    # then
    assert emails_in(response.content.decode()) == expected


@pytest.mark.parametrize("sort", list(selectors.CONTACT_SORTS))
def test_contact_keyset_pages_cover_every_contact_once_both_ways(
    workspace: Workspace, after_commit: AfterCommit, sort: str
) -> None:
    """Walking next links visits every contact once in order; prev links walk back the same pages (ties included)."""
    # given: ties on every computed column, and contacts without any event
    inputs = [purchase(f"c{n}@x.io", str(10 * (n % 3) + 10), days_ago=n % 2 + 1) for n in range(7)]
    with after_commit():
        events_create(workspace, inputs)
        for n in range(4):
            contact_upsert(workspace_id=workspace.id, email=f"quiet{n}@x.io", fields={})
    expected = [
        c.pk for c in selectors.contact_page(workspace_id=workspace.id, sort=sort, limit=100).items
    ]  # one page: the reference order
    # when
    pages, after = [], None
    while True:
        page = selectors.contact_page(workspace_id=workspace.id, sort=sort, limit=3, after=after)
        pages.append(page)
        if not page.next_cursor:
            break
        after = page.next_cursor
    back = [pages[-1].items]
    before = pages[-1].prev_cursor
    while before:
        page = selectors.contact_page(workspace_id=workspace.id, sort=sort, limit=3, before=before)
        back.insert(0, page.items)
        before = page.prev_cursor
    # then
    assert len(expected) == 11
    assert [c.pk for p in pages for c in p.items] == expected
    assert [[c.pk for c in items] for items in back] == [[c.pk for c in p.items] for p in pages]
    assert pages[0].prev_cursor is None


def test_contact_list_next_and_previous_links_work_without_js(
    member_client: Client, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, after_commit: AfterCommit
) -> None:
    """The pager's links carry the cursor and keep search and sort; following them pages forward and back."""
    # given
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    with after_commit():
        for n in range(5):
            events_create(workspace, [purchase(f"p{n}@x.io", str(n + 1))])
    # when
    first = member_client.get("/contacts/?sort=-ltv&q=x.io")
    next_link = re.search(r'rel="next" href="([^"]+)"', first.content.decode())
    assert next_link is not None
    next_url = next_link.group(1).replace("&amp;", "&")
    second = member_client.get("/contacts/" + next_url)
    prev_link = re.search(r'rel="prev" href="([^"]+)"', second.content.decode())
    assert prev_link is not None
    prev_url = prev_link.group(1).replace("&amp;", "&")
    back = member_client.get("/contacts/" + prev_url)
    # then
    assert "sort=-ltv" in next_url and "q=x.io" in next_url
    assert emails_in(first.content.decode()) == ["p4@x.io", "p3@x.io"]
    assert emails_in(second.content.decode()) == ["p2@x.io", "p1@x.io"]
    assert emails_in(back.content.decode()) == ["p4@x.io", "p3@x.io"]


def test_contact_list_htmx_request_gets_only_the_results_fragment(
    member_client: Client, workspace: Workspace, after_commit: AfterCommit
) -> None:
    """htmx requests targeting the results get the results section alone, from the same view."""
    # given
    with after_commit():
        events_create(workspace, [purchase("a@x.io", "5")])
    # when
    response = member_client.get("/contacts/?sort=-ltv", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="contact-results")
    # then
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="contact-results"')
    assert "<html" not in html and "a@x.io" in html


def test_contact_list_ignores_a_foreign_cursor(
    member_client: Client, workspace: Workspace, after_commit: AfterCommit
) -> None:
    """A tampered or stale cursor restarts at the first page instead of failing."""
    # given
    with after_commit():
        events_create(workspace, [purchase("a@x.io", "5")])
    # when
    response = member_client.get("/contacts/?after=not-a-cursor&sort=-orders")
    # then
    assert response.status_code == 200
    assert emails_in(response.content.decode()) == ["a@x.io"]


@pytest.mark.parametrize("sort", ["-created", "-ltv", "-orders", "last_event"])
def test_contact_list_query_count_does_not_grow_with_rows(
    member_client: Client,
    workspace: Workspace,
    django_assert_max_num_queries: Any,
    after_commit: AfterCommit,
    sort: str,
) -> None:
    """Five contacts or fifty, the page runs the same few queries (stored totals are joined, not read per row)."""
    for count in (5, 50):
        # given
        Contact.objects.filter(workspace=workspace).delete()
        with after_commit():
            events_create(workspace, [purchase(f"q{n}@x.io", "10") for n in range(count)])
        # when
        with django_assert_max_num_queries(LIST_MAX_QUERIES):
            response = member_client.get(f"/contacts/?sort={sort}")
        # then
        assert len(response.context["page"].items) == count


# ---------------------------------------------------------------------------------------
# Contact page
# ---------------------------------------------------------------------------------------


def test_contact_page_shows_profile_rfm_summary_and_segment_chips(member_client: Client, workspace: Workspace) -> None:
    """The summary: net value, orders, average order value (before refunds), first/last purchase, refunds;
    chips list live segments only."""
    from segments.models import Segment
    from segments.services import segment_build, segment_create, segment_delete

    # given
    contact_upsert(workspace_id=workspace.id, email="ann@x.io", fields={"first_name": "Ann", "last_name": "Lee"})
    events_create(
        workspace,
        [
            purchase("ann@x.io", "100.00", days_ago=10),
            purchase("ann@x.io", "50.00", days_ago=5),
            purchase("ann@x.io", "-20.00", days_ago=4, name="order.refunded"),
        ],
    )
    for slug in ("vip", "gone"):
        segment = segment_create(workspace_id=workspace.id, slug=slug, name=slug.upper(), tree=goal_tree())
        assert segment_build(segment_pk=segment.pk, version=segment.version)
    segment_delete(segment=Segment.objects.get(slug="gone"))
    contact = Contact.objects.get(email="ann@x.io")
    # when
    response = member_client.get(f"/contacts/{contact.pk}/")
    # then
    summary = response.context["summary"]
    assert summary.lifetime_value == Decimal("130.00")
    assert summary.order_count == 2
    assert summary.average_order_value == Decimal("75.00")
    assert summary.first_purchase_at == NOW - timedelta(days=10)
    assert summary.last_purchase_at == NOW - timedelta(days=5)
    assert (summary.refund_count, summary.refund_total) == (1, Decimal("20.00"))
    html = response.content.decode()
    assert "Ann Lee" in html and "130.00" in html and "75.00" in html
    assert [m.segment.slug for m in response.context["memberships"]] == ["vip"]
    chips = html[html.index('<ul class="chips"') : html.index("</ul>", html.index('<ul class="chips"'))]
    assert "VIP" in chips and "GONE" not in chips  # a deleted segment's join stays in the timeline only


def test_contact_page_lists_the_profile_fields_that_are_set(member_client: Client, workspace: Workspace) -> None:
    """The profile card lists the Notifuse profile fields the contact has, labelled, times in UTC; its
    free-form properties stay listed apart; fields not set are not shown."""
    # given
    fields = {
        "phone": "+33 1 23",
        "custom_number_1": 12.5,
        "custom_datetime_1": "2026-03-01T10:00:00Z",
        "custom_json_1": {"plan": "pro"},
        "properties": {"source_site": "shop"},
    }
    contact = contact_upsert(workspace_id=workspace.id, email="ann@x.io", fields=fields).contact
    # when
    response = member_client.get(f"/contacts/{contact.pk}/")
    # then
    assert response.context["profile_fields"] == [
        ("Phone", "+33 1 23"),
        ("Custom number 1", "12.5"),
        ("Custom datetime 1", "2026-03-01 10:00 UTC"),
        ("Custom json 1", "plan: pro"),
    ]
    assert response.context["properties"] == [("source_site", "shop")]
    html = response.content.decode()
    listed = html[html.index('<dl class="facts profile-fields"') : html.index("</dl>", html.index("profile-fields"))]
    assert "<dt>Phone</dt><dd>+33 1 23</dd>" in listed
    assert "Country" not in listed


def test_contact_page_without_profile_fields_has_no_such_list(member_client: Client, workspace: Workspace) -> None:
    """No profile field set: no empty list."""
    # given
    contact = contact_upsert(workspace_id=workspace.id, email="ann@x.io", fields={}).contact
    # when
    response = member_client.get(f"/contacts/{contact.pk}/")
    # then
    assert b"profile-fields" not in response.content


def test_contact_page_summary_without_purchases(member_client: Client, workspace: Workspace) -> None:
    """A contact who never bought shows zeros and no average rather than an error."""
    # given
    contact = contact_upsert(workspace_id=workspace.id, email="new@x.io", fields={}).contact
    # when
    response = member_client.get(f"/contacts/{contact.pk}/")
    # then
    summary = response.context["summary"]
    assert (summary.lifetime_value, summary.order_count, summary.average_order_value) == (Decimal("0.00"), 0, None)
    assert b"Nothing on this timeline yet" not in response.content  # contact.created is an entry
    assert b"contact.created" in response.content


def test_timeline_shows_event_details_operations_and_segment_changes(
    member_client: Client, workspace: Workspace
) -> None:
    """A custom event shows name, goal, value with currency, source, external id, three properties inline and
    the rest expandable; updated, deleted and restored entries are marked; segment joins show inline."""
    from segments.services import segment_build, segment_create

    # given
    base = purchase("ann@x.io", "42.50", days_ago=2, order_id="A-1", items=3, coupon="WELCOME", channel="web")
    events_create(workspace, [base])
    updated = EventInput(**{**base.__dict__, "occurred_at": base.occurred_at + timedelta(hours=1)})
    events_upsert(workspace_id=workspace.id, events=[updated])
    event = CustomEvent.objects.get(external_id=base.external_id)
    event_set_deleted(event=event, deleted=True)
    event.refresh_from_db()
    event_set_deleted(event=event, deleted=False)
    segment = segment_create(workspace_id=workspace.id, slug="big", name="Big spenders", tree=goal_tree("sum", 40))
    segment_build(segment_pk=segment.pk, version=segment.version)
    contact = Contact.objects.get(email="ann@x.io")
    # when
    response = member_client.get(f"/contacts/{contact.pk}/")
    # then
    html = response.content.decode()
    assert "order.completed" in html and "Purchase" in html and "42.50 EUR" in html
    assert base.external_id in html and "source api" in html
    assert html.count('<details class="props-more">') == 4  # one per entry of the event, each with 2 more
    assert "2 more properties" in html
    for badge in (">updated<", ">deleted<", ">restored<", ">joined<"):
        assert badge in html
    assert "Big spenders" in html


def test_timeline_filters_by_kind_and_date_range(member_client: Client, workspace: Workspace) -> None:
    """The kind select offers the contact's kinds and "all custom events"; dates bound entries, end date included."""
    # given
    events_create(
        workspace,
        [
            purchase("ann@x.io", "10", days_ago=30),
            page_view("ann@x.io", days_ago=20, path="/pricing"),
            purchase("ann@x.io", "20", days_ago=10),
        ],
    )
    contact = Contact.objects.get(email="ann@x.io")
    url = f"/contacts/{contact.pk}/"
    since = (NOW - timedelta(days=25)).date().isoformat()
    until = (NOW - timedelta(days=10)).date().isoformat()
    # when
    only_orders = member_client.get(url, {"kind": "custom_event.order.completed"})
    all_events = member_client.get(url, {"kind": "custom_event.*"})
    in_range = member_client.get(url, {"since": since, "until": until})
    # then
    kinds = lambda response: [item.entry.kind for item in response.context["items"]]  # noqa: E731
    assert kinds(only_orders) == ["custom_event.order.completed"] * 2
    assert sorted(set(kinds(all_events))) == ["custom_event.order.completed", "custom_event.page.viewed"]
    assert kinds(in_range) == ["custom_event.order.completed", "custom_event.page.viewed"]
    html = only_orders.content.decode()
    assert '<option value="custom_event.order.completed" selected>order.completed</option>' in html
    assert '<option value="contact.created">Contact created</option>' in html  # a label, not the raw kind


def test_timeline_filter_errors_keep_the_input(member_client: Client, workspace: Workspace) -> None:
    """An end date before the start date is reported next to the field; both dates stay in the form."""
    # given
    contact = contact_upsert(workspace_id=workspace.id, email="ann@x.io", fields={}).contact
    # when
    response = member_client.get(f"/contacts/{contact.pk}/", {"since": "2026-03-10", "until": "2026-03-01"})
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "The end date is before the start date." in html
    assert 'value="2026-03-10"' in html and 'value="2026-03-01"' in html


def test_older_events_link_pages_the_timeline_with_and_without_htmx(
    member_client: Client, workspace: Workspace
) -> None:
    """ "Older events" is a real link carrying the cursor (and the filters); to htmx the same URL returns just
    the next entries and the next button, from the same view."""
    # given: more entries than one timeline page
    total = views.TIMELINE_PAGE_SIZE + 10
    events_create(workspace, [page_view("ann@x.io", days_ago=n + 1, n=n) for n in range(total)])
    contact = Contact.objects.get(email="ann@x.io")
    url = f"/contacts/{contact.pk}/"
    # when
    first = member_client.get(url, {"kind": "custom_event.*"})
    match = re.search(
        r'href="(\?[^"#]+)#timeline" hx-get="(\?[^"]+)" hx-target="closest li" hx-swap="outerHTML"',
        first.content.decode(),
    )
    assert match is not None
    older = match.group(1).replace("&amp;", "&")
    plain = member_client.get(url + older)
    fragment = member_client.get(url + older, HTTP_HX_REQUEST="true")
    # then
    assert "cursor=" in older and "kind=custom_event" in older
    assert len(first.context["items"]) == views.TIMELINE_PAGE_SIZE
    assert len(plain.context["items"]) == total - views.TIMELINE_PAGE_SIZE
    assert b"<html" in plain.content
    html = fragment.content.decode()
    assert "<html" not in html and "Profile" not in html
    assert html.count('<li class="tl-item') == total - views.TIMELINE_PAGE_SIZE
    assert "Older events" not in html  # last page


def test_contact_page_query_count_does_not_grow_with_events(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """Five events or fifty: the page and the "Older events" fragment run the same few queries."""
    for count in (5, 50):
        # given
        Contact.objects.filter(workspace=workspace).delete()
        events_create(
            workspace,
            [purchase("ann@x.io", "10", days_ago=n + 1, a=1, b=2, c=3, d=4) for n in range(count)],
        )
        contact = Contact.objects.get(email="ann@x.io")
        # when
        with django_assert_max_num_queries(CONTACT_MAX_QUERIES):
            page = member_client.get(f"/contacts/{contact.pk}/")
        cursor = re.search(r'hx-get="\?cursor=([^"]+)"', page.content.decode())
        if cursor:
            with django_assert_max_num_queries(TIMELINE_FRAGMENT_MAX_QUERIES):
                member_client.get(f"/contacts/{contact.pk}/?cursor={cursor.group(1)}", HTTP_HX_REQUEST="true")
        # then
        assert len(page.context["items"]) == min(count + 1, views.TIMELINE_PAGE_SIZE)


# ---------------------------------------------------------------------------------------
# Events list
# ---------------------------------------------------------------------------------------


def test_events_page_filters_by_name_goal_date_and_deleted(member_client: Client, workspace: Workspace) -> None:
    """Filters combine: exact or prefix name, goal type, a date range, live/deleted/all."""
    # given
    events_create(
        workspace,
        [
            purchase("a@x.io", "10", days_ago=1),
            purchase("a@x.io", "-5", days_ago=2, name="order.refunded"),
            page_view("a@x.io", days_ago=40),
        ],
    )
    gone = purchase("b@x.io", "99", days_ago=3)
    events_create(workspace, [gone])
    event_set_deleted(event=CustomEvent.objects.get(external_id=gone.external_id), deleted=True)

    def names(**params: str) -> list[str]:
        response = member_client.get("/events/", params)
        assert response.status_code == 200
        return [e.event_name for e in response.context["page"].items]

    # when / then
    assert names() == ["order.completed", "order.refunded", "page.viewed"]
    assert names(event_name="order.*") == ["order.completed", "order.refunded"]
    assert names(event_name="order.refunded") == ["order.refunded"]
    assert names(goal_type="purchase", deleted="all") == ["order.completed", "order.refunded", "order.completed"]
    assert names(deleted="deleted") == ["order.completed"]
    since = (NOW - timedelta(days=10)).date().isoformat()
    assert names(since=since, deleted="all") == ["order.completed", "order.refunded", "order.completed"]
    until = (NOW - timedelta(days=30)).date().isoformat()
    assert names(until=until) == ["page.viewed"]


def test_events_page_shows_deleted_marker_and_keeps_filter_input(member_client: Client, workspace: Workspace) -> None:
    """Deleted events carry a badge; an invalid filter shows its error and keeps what was typed."""
    # given
    gone = purchase("b@x.io", "99", days_ago=3)
    events_create(workspace, [gone])
    event_set_deleted(event=CustomEvent.objects.get(external_id=gone.external_id), deleted=True)
    # when
    deleted = member_client.get("/events/?deleted=deleted")
    invalid = member_client.get("/events/?since=not-a-date&event_name=order.completed")
    # then
    assert b'badge badge-bad">deleted<' in deleted.content
    assert b"Enter a valid date." in invalid.content
    assert b'value="not-a-date"' in invalid.content and b'value="order.completed"' in invalid.content


def test_events_page_keyset_pagination(
    member_client: Client, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Next and previous links walk the events newest first without gaps or repeats."""
    # given
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    events_create(workspace, [page_view("a@x.io", days_ago=n + 1, n=n) for n in range(5)])
    seen: list[int] = []
    url = "/events/"
    # when
    while url:
        response = member_client.get(url)
        seen += [e.pk for e in response.context["page"].items]
        next_url = response.context["next_url"]
        url = "/events/" + next_url if next_url else ""
    # then
    assert seen == list(CustomEvent.objects.order_by("-occurred_at", "-id").values_list("pk", flat=True))


def test_events_page_query_count_does_not_grow_with_rows(
    member_client: Client, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """Five events or fifty, with their contacts: the same few queries."""
    for count in (5, 50):
        # given
        CustomEvent.objects.all().delete()
        events_create(workspace, [purchase(f"e{n}@x.io", "1") for n in range(count)])
        # when
        with django_assert_max_num_queries(EVENTS_MAX_QUERIES):
            response = member_client.get("/events/?deleted=all")
        # then
        assert len(response.context["page"].items) == count


def test_dates_are_the_workspace_dates(member_client: Client, workspace: Workspace) -> None:
    """A date filter means midnight to midnight in the workspace's timezone, not UTC."""
    # given: 23:30 UTC on March 1st is already March 2nd in Paris
    workspace.timezone = "Europe/Paris"
    workspace.save()
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    events_create(workspace, [EventInputFactory.build(email="a@x.io", occurred_at=at)])
    # when
    march_1 = member_client.get("/events/", {"since": "2026-03-01", "until": "2026-03-01"})
    march_2 = member_client.get("/events/", {"since": "2026-03-02", "until": "2026-03-02"})
    # then
    assert len(march_1.context["page"].items) == 0
    assert len(march_2.context["page"].items) == 1


@pytest.mark.parametrize("path", ["/contacts/", "/contacts/{pk}/", "/events/"])
def test_every_input_has_a_label(member_client: Client, workspace: Workspace, path: str) -> None:
    """Each visible input and select on the page is named by a <label for=...>."""
    # given
    contact = contact_upsert(workspace_id=workspace.id, email="ann@x.io", fields={}).contact
    # when
    html = member_client.get(path.format(pk=contact.pk)).content.decode()
    # then
    ids = re.findall(r'<(?:input|select)(?![^>]*type="hidden")[^>]*\sid="([^"]+)"', html)
    assert len(ids) >= 2
    for input_id in ids:
        assert f'for="{input_id}"' in html
