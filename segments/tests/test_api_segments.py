"""The segments HTTP API: create, update, delete, rebuild, get, list, preview, members, export,
explain, templates, and segment membership on contacts.get.

Data is written through the services; requests that queue a build run it in-process after
their commit (``django_capture_on_commit_callbacks(execute=True)``, see ``api_helpers.post``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from contacts.models import Contact, TimelineEntry
from events_platform.workspaces.models import Workspace
from segments import services
from segments.models import Segment, SegmentMembership, SegmentMembershipChange
from segments.rules import TEMPLATES, validate_tree
from segments.tests.api_helpers import CaptureOnCommit, create_from_template, get, member_emails, post, purchase, store
from segments.tests.trees import all_of, any_of, goal_leaf, segment_leaf

SPENT_1000 = all_of(goal_leaf("sum", "gte", 1000))
SPENT_1000_RECENTLY = all_of(
    goal_leaf("sum", "gte", 1000), goal_leaf("count", "gte", 1, timeframe="in_the_last_days", days=30)
)


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    """ann spent 1100 lately, bob 400, cat 740.50, dan 1200 a hundred days ago; eve only exists."""
    store(
        workspace.id,
        [
            purchase("ann@x.io", "o1", "600", days_ago=1),
            purchase("ann@x.io", "o2", "500", days_ago=2),
            purchase("bob@x.io", "o3", "400", days_ago=3),
            purchase("cat@x.io", "o4", "500.25", days_ago=4),
            purchase("cat@x.io", "o5", "240.25", days_ago=5),
            purchase("dan@x.io", "o6", "1200", days_ago=100),
        ],
    )
    Contact.objects.create(workspace=workspace, email="eve@x.io")
    return workspace


def create(client: APIClient, capture: CaptureOnCommit, slug: str, tree: dict[str, Any], **extra: Any) -> Any:
    return post(
        client, "segments.create", {"workspace_id": "acme", "id": slug, "name": slug, "tree": tree, **extra}, capture
    )


def segment_json(client: APIClient, slug: str) -> dict[str, Any]:
    response = get(client, "segments.get", {"workspace_id": "acme", "id": slug})
    assert response.status_code == 200, response.content
    return response.json()["segment"]


@dataclass(frozen=True)
class AcmeApi:
    """The segments API as workspace acme's key calls it: every body and query names acme, and a
    POST runs what it queued for after its commit (the build, in-process)."""

    client: APIClient
    capture: CaptureOnCommit

    def create(self, slug: str, tree: dict[str, Any], **extra: Any) -> Any:
        return create(self.client, self.capture, slug, tree, **extra)

    def create_from_template(self, template: str) -> Any:
        return create_from_template(self.client, template, self.capture)

    def post(self, path: str, **body: Any) -> Any:
        return post(self.client, path, {"workspace_id": "acme", **body}, self.capture)

    def get(self, path: str, **params: Any) -> Any:
        return get(self.client, path, {"workspace_id": "acme", **params})

    def segment(self, slug: str) -> dict[str, Any]:
        return segment_json(self.client, slug)


@pytest.fixture
def api(api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit) -> AcmeApi:
    return AcmeApi(api_client, django_capture_on_commit_callbacks)


def row_counts() -> dict[str, int]:
    return {
        "segments": Segment.objects.count(),
        "memberships": SegmentMembership.objects.count(),
        "history": SegmentMembershipChange.objects.count(),
        "timeline": TimelineEntry.objects.count(),
    }


# ---------------------------------------------------------------------------------------
# segments.create
# ---------------------------------------------------------------------------------------


def test_create_with_a_tree_answers_201_and_the_build_makes_it_active(shop: Workspace, api: AcmeApi) -> None:
    """segments.create answers 201 with the segment building; its build then makes it active with its members."""
    # when
    response = api.create("big", SPENT_1000, color="#112233", timezone="Europe/Paris")

    # then
    assert response.status_code == 201, response.content
    created = response.json()["segment"]
    assert created["id"] == "big"
    assert created["workspace_id"] == "acme"
    assert created["status"] == "building"
    assert created["version"] == 1
    assert created["color"] == "#112233"
    assert created["timezone"] == "Europe/Paris"
    assert created["tree"] == validate_tree(SPENT_1000)
    built = api.segment("big")
    assert built["status"] == "active"
    assert built["member_count"] == 2
    assert built["last_built_at"] is not None
    assert built["last_build_duration_ms"] >= 0
    assert built["last_error"] == ""
    assert member_emails("acme", "big") == {"ann@x.io", "dan@x.io"}


TEMPLATE_SHOP = [
    # VIP: 1250 over 5 purchases, the latest 10 days ago; its first purchase is 50 days old.
    *[purchase("vip@x.io", f"v{days}", "250", days_ago=days) for days in (50, 40, 30, 20, 10)],
    # At risk: 600 spent, nothing for 100 days.
    purchase("sleeper@x.io", "s1", "300", days_ago=200),
    purchase("sleeper@x.io", "s2", "300", days_ago=100),
    # New high-potential: first purchase ever, 10 days ago, worth 250.
    purchase("newbie@x.io", "n1", "250", days_ago=10),
    # New, but the first purchase was only 150.
    purchase("small@x.io", "m1", "150", days_ago=5),
    purchase("small@x.io", "m2", "500", days_ago=2),
]


@pytest.mark.parametrize(
    ("template", "expected"),
    [("vip", {"vip@x.io"}), ("at_risk_high_value", {"sleeper@x.io"}), ("new_high_potential", {"newbie@x.io"})],
)
def test_create_from_a_template_uses_its_tree_name_and_colour(
    workspace: Workspace,
    api: AcmeApi,
    template: str,
    expected: set[str],
) -> None:
    """segments.create with only a template creates the template's segment and builds it."""
    # given
    store(workspace.id, TEMPLATE_SHOP)

    # when
    response = api.create_from_template(template)

    # then
    assert response.status_code == 201, response.content
    body = response.json()["segment"]
    assert body["name"] == TEMPLATES[template]["name"]
    assert body["color"] == TEMPLATES[template]["color"]
    assert body["tree"] == TEMPLATES[template]["tree"]
    built = api.segment(template)
    assert built["status"] == "active"
    assert built["member_count"] == len(expected)
    assert member_emails("acme", template) == expected


def test_create_with_an_existing_id_is_a_400_naming_id(shop: Workspace, api: AcmeApi) -> None:
    """A second segment with the same id in the workspace is refused; the first is untouched."""
    # given
    api.create("big", SPENT_1000)
    before = row_counts()

    # when
    response = api.create("big", all_of(goal_leaf("count", "gte", 1)))

    # then
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["id"]
    assert row_counts() == before
    assert api.segment("big")["tree"] == validate_tree(SPENT_1000)


def test_an_invalid_tree_is_a_400_naming_the_full_path(shop: Workspace, api: AcmeApi) -> None:
    """A between whose value_2 is below value is reported at its full path; nothing is written."""
    # given
    tree = all_of(goal_leaf("sum", "gte", 1), goal_leaf("sum", "between", 500, value_2=100))
    before = row_counts()

    # when
    response = api.create("bad", tree)

    # then
    assert response.status_code == 400
    body = response.json()
    assert list(body["details"]) == ["tree.branch.leaves[1].leaf.custom_events_goal.value_2"]
    assert "tree.branch.leaves[1].leaf.custom_events_goal.value_2" in body["error"]
    assert row_counts() == before


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        ({"kind": "twig"}, "tree.kind"),
        (all_of({"kind": "leaf", "leaf": {"source": "nowhere"}}), "tree.branch.leaves[0].leaf.source"),
        (
            all_of(goal_leaf("sum", "gte", 1), all_of(goal_leaf("median", "gte", 1))),
            "tree.branch.leaves[1].branch.leaves[0].leaf.custom_events_goal.aggregate_operator",
        ),
    ],
)
def test_other_invalid_trees_name_their_path(
    shop: Workspace,
    api: AcmeApi,
    tree: dict[str, Any],
    path: str,
) -> None:
    """Whatever is wrong and however deep, the 400 names the path of the offending field."""
    # when
    response = api.create("bad", tree)

    # then
    assert response.status_code == 400
    assert path in response.json()["details"], response.json()


def test_a_tree_and_a_template_together_are_a_400(shop: Workspace, api: AcmeApi) -> None:
    """Either a tree or a template: both is ambiguous and refused, naming template."""
    # when
    response = api.create("vip", SPENT_1000, template="vip")

    # then
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["template"]
    assert not Segment.objects.exists()


def test_neither_a_tree_nor_a_template_is_a_400_naming_tree(shop: Workspace, api: AcmeApi) -> None:
    """A segment needs a rule: without tree or template the 400 names tree."""
    # when
    response = api.post("segments.create", id="x", name="X")

    # then
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["tree"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"color": "reddish"}, "color"),  # "red" is one of the console's colour names
        ({"color": "#12345"}, "color"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"id": "Big"}, "id"),
        ({"id": "big-spenders"}, "id"),
        ({"id": "big spenders"}, "id"),
        ({"id": "a" * 33}, "id"),
        ({"name": ""}, "name"),
        ({"template": "whales"}, "template"),
    ],
)
def test_bad_fields_are_a_400_naming_the_field(
    shop: Workspace,
    api_client: APIClient,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    overrides: dict[str, Any],
    field: str,
) -> None:
    """Colour, timezone, id slug, name and template are checked; the 400 names the bad field."""
    # given
    body = {"workspace_id": "acme", "id": "big", "name": "Big", "tree": SPENT_1000, **overrides}
    if "template" in overrides:
        del body["tree"]

    # when
    response = post(api_client, "segments.create", body, django_capture_on_commit_callbacks)

    # then
    assert response.status_code == 400
    assert list(response.json()["details"]) == [field]
    assert not Segment.objects.exists()


def test_create_refers_only_to_existing_segments(shop: Workspace, api: AcmeApi) -> None:
    """A tree may use another segment of the workspace, but not an unknown one."""
    # given
    api.create("big", SPENT_1000)

    # when
    unknown = api.create("x", all_of(segment_leaf("nope")))
    known = api.create(
        "big_recent", all_of(segment_leaf("big"), goal_leaf("count", "gte", 1, timeframe="in_the_last_days", days=30))
    )

    # then
    assert unknown.status_code == 400
    assert list(unknown.json()["details"]) == ["tree"]
    assert known.status_code == 201
    assert member_emails("acme", "big_recent") == {"ann@x.io"}


# ---------------------------------------------------------------------------------------
# segments.update / delete / rebuild
# ---------------------------------------------------------------------------------------


def test_update_of_name_and_colour_keeps_version_and_does_not_rebuild(shop: Workspace, api: AcmeApi) -> None:
    """Renaming changes no rule: same version, same last build, same members."""
    # given
    api.create("big", SPENT_1000)
    before = api.segment("big")
    history = SegmentMembershipChange.objects.count()

    # when
    response = api.post("segments.update", id="big", name="Big spenders", color="#000000")

    # then
    assert response.status_code == 200, response.content
    after = api.segment("big")
    assert after["name"] == "Big spenders"
    assert after["color"] == "#000000"
    assert after["version"] == before["version"]
    assert after["status"] == "active"
    assert after["last_built_at"] == before["last_built_at"]
    assert after["member_count"] == 2
    assert SegmentMembershipChange.objects.count() == history


def test_update_of_the_tree_bumps_the_version_and_rebuilds(shop: Workspace, api: AcmeApi) -> None:
    """A new tree answers with version + 1 and status building; the build then applies the difference."""
    # given
    api.create("big", SPENT_1000)

    # when
    response = api.post("segments.update", id="big", tree=all_of(goal_leaf("sum", "gte", 700)))

    # then
    assert response.status_code == 200, response.content
    assert response.json()["segment"]["version"] == 2
    assert response.json()["segment"]["status"] == "building"
    after = api.segment("big")
    assert after["status"] == "active"
    assert after["member_count"] == 3
    assert member_emails("acme", "big") == {"ann@x.io", "cat@x.io", "dan@x.io"}
    assert set(SegmentMembershipChange.objects.filter(change="entered").values_list("contact__email", flat=True)) == {
        "ann@x.io",
        "cat@x.io",
        "dan@x.io",
    }


def test_update_with_an_invalid_tree_is_a_400_and_changes_nothing(shop: Workspace, api: AcmeApi) -> None:
    """A bad tree on update is named by path; the segment keeps its tree and version."""
    # given
    api.create("big", SPENT_1000)

    # when
    response = api.post("segments.update", id="big", tree=all_of(goal_leaf("sum", "between", 5, value_2=1)))

    # then
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["tree.branch.leaves[0].leaf.custom_events_goal.value_2"]
    segment = api.segment("big")
    assert (segment["tree"], segment["version"]) == (validate_tree(SPENT_1000), 1)


def test_update_of_an_unknown_segment_is_a_404(shop: Workspace, api_client: APIClient) -> None:
    """Updating a segment that does not exist is a 404 in the error format."""
    # when
    response = api_client.post(
        "/api/segments.update", {"workspace_id": "acme", "id": "nope", "name": "N"}, format="json"
    )

    # then
    assert response.status_code == 404
    assert set(response.json()) == {"error", "details"}


def test_delete_hides_the_segment_and_frees_its_id(shop: Workspace, api: AcmeApi) -> None:
    """After delete: get is a 404, list leaves it out, members are gone, and the id can be used again."""
    # given
    api.create("big", SPENT_1000)

    # when
    response = api.post("segments.delete", id="big")

    # then
    assert response.status_code == 200
    assert response.json() == {"success": True, "deleted": True}
    assert api.get("segments.get", id="big").status_code == 404
    assert api.get("segments.list").json()["segments"] == []
    assert not SegmentMembership.objects.exists()
    again = api.create("big", all_of(goal_leaf("sum", "lt", 1000)))
    assert again.status_code == 201, again.content
    assert again.json()["segment"]["version"] == 1
    assert member_emails("acme", "big") == {"bob@x.io", "cat@x.io", "eve@x.io"}
    assert api.post("segments.delete", id="nope").status_code == 404


def test_delete_is_refused_while_another_segment_uses_it(shop: Workspace, api: AcmeApi) -> None:
    """A segment used by another one's tree cannot be deleted (400 naming id, both stay); the user can, then it."""
    # given
    api.create("big", SPENT_1000)
    api.create("not_big", all_of(segment_leaf("big", "not_in_segment")))

    # when
    refused = api.post("segments.delete", id="big")

    # then
    assert refused.status_code == 400
    assert list(refused.json()["details"]) == ["id"]
    assert "not_big" in refused.json()["error"]
    assert api.segment("big")["member_count"] == 2
    assert api.post("segments.delete", id="not_big").status_code == 200
    assert api.post("segments.delete", id="big").status_code == 200


def test_rebuild_recomputes_membership_from_the_current_data(shop: Workspace, api: AcmeApi) -> None:
    """Data that changed without a refresh reaching the segment is picked up by segments.rebuild (202)."""
    # given: bob's new purchase is stored, but its after-commit refresh never runs.
    api.create("big", SPENT_1000)
    store("acme", [purchase("bob@x.io", "o7", "700", days_ago=1)])
    assert member_emails("acme", "big") == {"ann@x.io", "dan@x.io"}

    # when
    response = api.post("segments.rebuild", id="big")

    # then
    assert response.status_code == 202, response.content
    assert response.json()["segment"]["version"] == 2
    assert response.json()["segment"]["status"] == "building"
    after = api.segment("big")
    assert (after["status"], after["member_count"]) == ("active", 3)
    assert member_emails("acme", "big") == {"ann@x.io", "bob@x.io", "dan@x.io"}
    unknown = api.post("segments.rebuild", id="nope")
    assert unknown.status_code == 404


# ---------------------------------------------------------------------------------------
# segments.get / list
# ---------------------------------------------------------------------------------------


def test_get_of_an_unknown_segment_is_a_404(shop: Workspace, api: AcmeApi) -> None:
    """An unknown id is a 404 in the error format; a missing id is a 400 naming id."""
    # when
    unknown = api.get("segments.get", id="nope")
    missing = api.get("segments.get")

    # then
    assert unknown.status_code == 404
    assert set(unknown.json()) == {"error", "details"}
    assert missing.status_code == 400
    assert list(missing.json()["details"]) == ["id"]


def test_list_shows_every_segment_with_counts_status_and_last_build(shop: Workspace, api: AcmeApi) -> None:
    """segments.list: every live segment by name, with member count, status and its last build."""
    # given: two built segments and one whose build has not run yet.
    api.create("big", SPENT_1000, name="Big")
    api.create("all", all_of(goal_leaf("count", "gte", 0)), name="All")
    services.segment_create(workspace_id="acme", slug="pending", name="Pending", tree=SPENT_1000)

    # when
    response = api.get("segments.list")

    # then
    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()["segments"]}
    assert [row["name"] for row in response.json()["segments"]] == ["All", "Big", "Pending"]
    assert rows["big"]["member_count"] == 2
    assert rows["all"]["member_count"] == 5
    for slug in ("big", "all"):
        assert rows[slug]["status"] == "active"
        assert rows[slug]["last_built_at"] is not None
        assert isinstance(rows[slug]["last_build_duration_ms"], int)
    assert rows["pending"]["status"] == "building"
    assert rows["pending"]["member_count"] == 0
    assert rows["pending"]["last_built_at"] is None
    assert rows["pending"]["last_build_duration_ms"] is None


# ---------------------------------------------------------------------------------------
# segments.preview
# ---------------------------------------------------------------------------------------


def test_preview_counts_the_tree_and_each_condition_and_writes_nothing(shop: Workspace, api: AcmeApi) -> None:
    """Preview: total, each top-level condition alone, the matching sample; not one row written."""
    # given
    before = row_counts()

    # when
    response = api.post("segments.preview", tree=SPENT_1000_RECENTLY)

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] == 1
    assert body["contacts_in_workspace"] == 5
    # sum >= 1000: ann, dan; a purchase in the last 30 days: ann, bob, cat.
    assert body["conditions"] == [{"index": 0, "count": 2}, {"index": 1, "count": 3}]
    assert [contact["email"] for contact in body["sample"]] == ["ann@x.io"]
    assert row_counts() == before


def test_preview_samples_at_most_ten_and_its_total_is_the_built_count(workspace: Workspace, api: AcmeApi) -> None:
    """With 12 matches the preview shows 10 of them, and a segment built from the same tree has 12 members."""
    # given
    store(workspace.id, [purchase(f"c{i:02}@x.io", f"o{i}", str(100 + i)) for i in range(15)])
    tree = all_of(goal_leaf("sum", "gte", 103))

    # when
    preview = api.post("segments.preview", tree=tree)
    api.create("most", tree)

    # then
    body = preview.json()
    assert body["total"] == 12
    assert len(body["sample"]) == 10
    matching = {f"c{i:02}@x.io" for i in range(3, 15)}
    assert {contact["email"] for contact in body["sample"]} <= matching
    assert api.segment("most")["member_count"] == body["total"]
    assert member_emails("acme", "most") == matching


def test_preview_of_a_single_leaf_counts_it_as_its_one_condition(shop: Workspace, api: AcmeApi) -> None:
    """A tree that is a bare leaf has one top-level condition; a negated one is the complement."""
    # when
    response = api.post("segments.preview", tree=goal_leaf("sum", "gte", 1000, negate=True))

    # then
    assert response.status_code == 200, response.content
    assert response.json()["total"] == 3
    assert response.json()["conditions"] == [{"index": 0, "count": 3}]


@pytest.mark.parametrize(
    ("tree", "field"),
    [
        (all_of(goal_leaf("sum", "between", 9, value_2=1)), "tree.branch.leaves[0].leaf.custom_events_goal.value_2"),
        (all_of(segment_leaf("nope")), "tree"),
    ],
)
def test_preview_of_a_bad_tree_is_a_400(
    shop: Workspace,
    api: AcmeApi,
    tree: dict[str, Any],
    field: str,
) -> None:
    """An invalid tree, or one using an unknown segment, is a 400 naming where."""
    # when
    response = api.post("segments.preview", tree=tree)

    # then
    assert response.status_code == 400, response.content
    assert list(response.json()["details"]) == [field]


# ---------------------------------------------------------------------------------------
# segments.contacts / export
# ---------------------------------------------------------------------------------------


def test_contacts_pages_through_every_member_exactly_once(
    workspace: Workspace, api: AcmeApi, api_client: APIClient, django_capture_on_commit_callbacks: CaptureOnCommit
) -> None:
    """Cursor pagination over 25 members (entered at the same instant, and 3 later) yields each one once."""
    # given
    store(workspace.id, [purchase(f"m{i:02}@x.io", f"o{i}", "50") for i in range(25)])
    api.create("buyers", all_of(goal_leaf("count", "gte", 1)))
    with django_capture_on_commit_callbacks(execute=True):
        store(workspace.id, [purchase(f"late{i}@x.io", f"l{i}", "50") for i in range(3)])

    # when
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"workspace_id": "acme", "id": "buyers", "limit": 10}
    while True:
        response = get(api_client, "segments.contacts", params)
        assert response.status_code == 200, response.content
        body = response.json()
        pages += 1
        seen += [contact["email"] for contact in body["contacts"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]

    # then
    expected = {f"m{i:02}@x.io" for i in range(25)} | {f"late{i}@x.io" for i in range(3)}
    assert len(seen) == len(expected) == 28
    assert set(seen) == expected
    assert pages == 3
    # Most recently entered first.
    assert set(seen[:3]) == {f"late{i}@x.io" for i in range(3)}


def test_contacts_shows_contact_fields_and_entered_at(shop: Workspace, api: AcmeApi) -> None:
    """Each member carries its contact fields and when it entered; a forged cursor is a 400."""
    # given
    api.create("big", SPENT_1000)
    entered = SegmentMembership.objects.get(contact__email="ann@x.io").entered_at

    # when
    response = api.get("segments.contacts", id="big")
    forged = api.get("segments.contacts", id="big", cursor="not-a-cursor")

    # then
    contacts = {contact["email"]: contact for contact in response.json()["contacts"]}
    assert set(contacts) == {"ann@x.io", "dan@x.io"}
    assert set(contacts["ann@x.io"]) == {
        "id",
        "email",
        "external_id",
        "first_name",
        "last_name",
        "properties",
        "entered_at",
    }
    assert contacts["ann@x.io"]["entered_at"].replace("Z", "+00:00") == entered.isoformat()
    assert response.json()["next_cursor"] is None
    assert forged.status_code == 400
    assert list(forged.json()["details"]) == ["cursor"]


def test_export_streams_a_csv_of_every_member(shop: Workspace, api: AcmeApi) -> None:
    """segments.export streams CSV: a header row, then one row per member ordered by email."""
    # given
    Contact.objects.filter(email="ann@x.io").update(first_name="Ann", last_name='O"Neil, Jr', external_id="u1")
    api.create("big", SPENT_1000)
    entered = {m.contact.email: m.entered_at for m in SegmentMembership.objects.select_related("contact")}

    # when
    response = api.get("segments.export", id="big")

    # then
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="segment-big.csv"'
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert rows == [
        ["email", "external_id", "first_name", "last_name", "entered_at"],
        ["ann@x.io", "u1", "Ann", 'O"Neil, Jr', entered["ann@x.io"].isoformat()],
        ["dan@x.io", "", "", "", entered["dan@x.io"].isoformat()],
    ]


def test_export_neutralises_formula_like_cells(shop: Workspace, api: AcmeApi) -> None:
    """Names and ids a spreadsheet would run as formulas are exported as text (leading apostrophe)."""
    # given
    Contact.objects.filter(email="ann@x.io").update(
        first_name='=HYPERLINK("http://evil")', last_name="@SUM(A1)", external_id="+1-555"
    )
    Contact.objects.filter(email="dan@x.io").update(first_name="Dan", last_name="-", external_id="\tx")
    api.create("big", SPENT_1000)

    # when
    response = api.get("segments.export", id="big")

    # then
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert [row[:4] for row in rows[1:]] == [
        ["ann@x.io", "'+1-555", '\'=HYPERLINK("http://evil")', "'@SUM(A1)"],
        ["dan@x.io", "'\tx", "Dan", "'-"],
    ]


def test_export_of_an_empty_segment_is_only_the_header(shop: Workspace, api: AcmeApi) -> None:
    """No members: the CSV still has its header row; an unknown segment is a 404."""
    # given
    api.create("whales", all_of(goal_leaf("sum", "gte", 10**6)))

    # when
    response = api.get("segments.export", id="whales")

    # then
    assert response.getvalue().decode().splitlines() == ["email,external_id,first_name,last_name,entered_at"]
    assert api.get("segments.export", id="nope").status_code == 404


# ---------------------------------------------------------------------------------------
# segments.explain / templates
# ---------------------------------------------------------------------------------------


def test_explain_gives_each_leaf_its_actual_value_and_whether_it_held(shop: Workspace, api: AcmeApi) -> None:
    """cat spent 740.50: 'sum = 740.50' does not hold for sum >= 1000, while its recent purchase does."""
    # given
    api.create("big_recent", SPENT_1000_RECENTLY)

    # when
    response = api.get("segments.explain", segment_id="big_recent", email="CAT@x.io")

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["segment_id"] == "big_recent"
    assert body["email"] == "cat@x.io"
    assert (body["matches"], body["is_member"]) == (False, False)
    first, second = body["conditions"]
    assert first["path"] == "tree.branch.leaves[0]"
    assert first["actual"] == "sum = 740.50"
    assert first["held"] is False
    assert "at least 1,000.00" in first["condition"]
    assert first["summary"].startswith("sum = 740.50, needed ")
    assert second["path"] == "tree.branch.leaves[1]"
    assert second["actual"] == "count = 2"
    assert second["held"] is True


def test_explain_of_a_member_holds_every_condition(shop: Workspace, api: AcmeApi) -> None:
    """For a member each condition held and the explanation agrees with the membership."""
    # given
    api.create("big_recent", SPENT_1000_RECENTLY)

    # when
    body = api.get("segments.explain", segment_id="big_recent", email="ann@x.io").json()

    # then
    assert (body["matches"], body["is_member"]) == (True, True)
    assert [(c["actual"], c["held"]) for c in body["conditions"]] == [("sum = 1100.00", True), ("count = 2", True)]


def test_explain_of_an_unknown_contact_or_segment_is_a_404(shop: Workspace, api: AcmeApi) -> None:
    """Unknown email or unknown segment: 404 in the error format."""
    # given
    api.create("big", SPENT_1000)

    # when
    no_contact = api.get("segments.explain", segment_id="big", email="zed@x.io")
    no_segment = api.get("segments.explain", segment_id="nope", email="ann@x.io")

    # then
    assert no_contact.status_code == 404
    assert no_segment.status_code == 404
    assert set(no_contact.json()) == set(no_segment.json()) == {"error", "details"}


def test_templates_lists_the_three_rfm_templates(workspace: Workspace, api: AcmeApi) -> None:
    """segments.templates lists VIP, At-Risk High-Value and New High-Potential with their trees."""
    # when
    response = api.get("segments.templates")

    # then
    assert response.status_code == 200
    templates = {template["id"]: template for template in response.json()["templates"]}
    assert set(templates) == {"vip", "at_risk_high_value", "new_high_potential"}
    for key, template in templates.items():
        assert template["name"] == TEMPLATES[key]["name"]
        assert template["description"]
        assert template["color"].startswith("#")
        assert template["tree"] == TEMPLATES[key]["tree"]


# ---------------------------------------------------------------------------------------
# contacts.get
# ---------------------------------------------------------------------------------------


def test_contacts_get_lists_the_contacts_segments(shop: Workspace, api: AcmeApi) -> None:
    """contacts.get carries the segments the contact belongs to (id, name, colour, entered_at), by name."""
    # given
    api.create("big", SPENT_1000, name="Big", color="#111111")
    api.create("recent", SPENT_1000_RECENTLY, name="Active big")
    api.create("gone", SPENT_1000, name="Gone")
    api.post("segments.delete", id="gone")

    # when
    ann = api.get("contacts.get", email="ann@x.io")
    eve = api.get("contacts.get", email="eve@x.io")

    # then
    assert ann.status_code == 200, ann.content
    segments = ann.json()["contact"]["segments"]
    assert [(s["id"], s["name"]) for s in segments] == [("recent", "Active big"), ("big", "Big")]
    assert segments[1]["color"] == "#111111"
    assert segments[1]["entered_at"]
    assert ann.json()["contact"]["email"] == "ann@x.io"
    assert eve.json()["contact"]["segments"] == []
    assert api.get("contacts.get", email="zed@x.io").status_code == 404


def test_erasing_a_contact_lowers_the_member_count_of_its_segments(shop: Workspace, api: AcmeApi) -> None:
    """contacts.delete of a member: the segment's count follows its members (2 -> 1)."""
    # given
    api.create("big", SPENT_1000)

    # when
    response = api.post("contacts.delete", email="ann@x.io")

    # then
    assert response.status_code == 200, response.content
    assert member_emails("acme", "big") == {"dan@x.io"}
    assert api.segment("big")["member_count"] == 1
    assert api.get("segments.list").json()["segments"][0]["member_count"] == 1


def test_explain_names_nested_and_negated_leaves_by_path(shop: Workspace, api: AcmeApi) -> None:
    """Nested leaves are explained at their full path; a negated leaf says "not:" and holds when its body fails."""
    # given
    api.create("big", SPENT_1000)
    tree = all_of(segment_leaf("big"), any_of(goal_leaf("count", "gte", 2, negate=True), goal_leaf("max", "gt", 550)))
    api.create("mixed", tree)

    # when
    body = api.get("segments.explain", segment_id="mixed", email="ann@x.io").json()

    # then
    assert [(c["path"], c["actual"], c["held"]) for c in body["conditions"]] == [
        ("tree.branch.leaves[0]", "member", True),
        ("tree.branch.leaves[1].branch.leaves[0]", "count = 2", False),
        ("tree.branch.leaves[1].branch.leaves[1]", "max = 600.00", True),
    ]
    assert body["conditions"][1]["condition"].startswith("not: ")
    assert (body["matches"], body["is_member"]) == (True, True)


def test_update_of_the_timezone_rebuilds(shop: Workspace, api: AcmeApi) -> None:
    """Dates are read in the segment's timezone, so a new timezone is a new version and a new build."""
    # given
    api.create("big", SPENT_1000)

    # when
    response = api.post("segments.update", id="big", timezone="America/New_York")

    # then
    assert response.status_code == 200, response.content
    assert (response.json()["segment"]["version"], response.json()["segment"]["status"]) == (2, "building")
    after = api.segment("big")
    assert (after["timezone"], after["status"], after["member_count"]) == ("America/New_York", "active", 2)


def test_update_that_would_make_a_cycle_is_a_400_naming_tree(shop: Workspace, api: AcmeApi) -> None:
    """a uses b; b may not then use a (nor itself): 400 naming tree, b unchanged."""
    # given
    api.create("b", SPENT_1000)
    api.create("a", all_of(segment_leaf("b")))

    # when
    via_a = api.post("segments.update", id="b", tree=all_of(segment_leaf("a")))
    itself = api.post("segments.update", id="b", tree=all_of(segment_leaf("b")))

    # then
    for response in (via_a, itself):
        assert response.status_code == 400, response.content
        assert list(response.json()["details"]) == ["tree"]
    assert api.segment("b")["version"] == 1


def test_create_from_a_template_keeps_a_given_name_and_colour(workspace: Workspace, api: AcmeApi) -> None:
    """A template supplies the tree; a name and colour given with it win over the template's."""
    # when
    response = api.post("segments.create", id="whales", template="vip", name="Whales", color="#abcdef")

    # then
    assert response.status_code == 201, response.content
    body = response.json()["segment"]
    assert (body["name"], body["color"], body["tree"]) == ("Whales", "#abcdef", TEMPLATES["vip"]["tree"])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("segments.contacts", {"id": "big", "limit": 0}, "limit"),
        ("segments.contacts", {"id": "big", "limit": 100_000}, "limit"),
        ("segments.contacts", {"id": "big", "limit": "ten"}, "limit"),
        ("segments.contacts", {}, "id"),
        ("segments.export", {}, "id"),
        ("segments.explain", {"segment_id": "big"}, "email"),
        ("segments.explain", {"email": "ann@x.io"}, "segment_id"),
    ],
)
def test_bad_query_parameters_are_a_400_naming_them(
    shop: Workspace,
    api: AcmeApi,
    path: str,
    params: dict[str, Any],
    field: str,
) -> None:
    """Reads validate their query string and name the bad parameter."""
    # given
    api.create("big", SPENT_1000)

    # when
    response = api.get(path, **params)

    # then
    assert response.status_code == 400, response.content
    assert list(response.json()["details"]) == [field]


def test_preview_with_a_bad_timezone_is_a_400_naming_it(shop: Workspace, api: AcmeApi) -> None:
    """The preview reads dates in the given timezone, which must be an IANA name."""
    # when
    response = api.post("segments.preview", tree=SPENT_1000, timezone="Nowhere/Land")

    # then
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["timezone"]
