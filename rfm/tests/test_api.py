"""The RFM API (RFM §8): model CRUD, recompute, preview, distribution, transitions, contacts
(cursor pages and CSV), contacts.get's scores, and every bad input a 400 naming its path with
nothing written."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact
from events_platform.workspaces.models import Workspace
from rfm import services
from rfm.models import RfmModel, RfmRun, RfmScore
from rfm.tests.conftest import AfterCommit, purchase, store_contacts, store_events

pytestmark = pytest.mark.django_db

# contacts.list: API key (and its rate window where the database keeps it), the page, memberships,
# RFM models, their scores.
LIST_MAX_QUERIES = 6


@pytest.fixture
def buyers(workspace: Workspace) -> list[int]:
    """Twelve contacts: ten customers of varying recency, frequency and value, two prospects."""
    ids = store_contacts(workspace, 12)
    now = timezone.now()
    store_events(
        workspace,
        [
            purchase(ids[i], now - dt.timedelta(days=3 + 17 * i + k), f"{10 * (i + 1)}.50")
            for i in range(10)
            for k in range(i % 5 + 1)
        ],
    )
    return ids


def _create(api_client: APIClient, after_commit: AfterCommit, **body: Any) -> Any:
    with after_commit():
        response = api_client.post("/api/rfmModels.create", {"workspace_id": "acme", **body}, format="json")
    return response


def test_create_get_list_update_recompute_delete(
    api_client: APIClient, after_commit: AfterCommit, buyers: list[int]
) -> None:
    """A model is created (first run done after the commit), read, listed, changed (a new run),
    recomputed and deleted; its id is free again afterwards."""
    # when
    created = _create(api_client, after_commit, id="default", name="Purchases RFM", preset="klaviyo")
    # then
    assert created.status_code == 201, created.json()
    body = created.json()["rfm_model"]
    assert (body["id"], body["scale"], body["group_map"], body["window_days"]) == ("default", 3, "klaviyo6", None)
    assert [g["id"] for g in body["groups"]][-2:] == ["prospect", "lapsed"]
    got = api_client.get("/api/rfmModels.get", {"workspace_id": "acme", "id": "default"}).json()["rfm_model"]
    assert got["status"] == "active" and got["population"] == 10
    assert got["cutpoints"]["recency"]["cuts"] == [180, 365]
    listed = api_client.get("/api/rfmModels.list", {"workspace_id": "acme"}).json()["rfm_models"]
    assert [m["id"] for m in listed] == ["default"]
    # when
    with after_commit():
        updated = api_client.post(
            "/api/rfmModels.update",
            {"workspace_id": "acme", "id": "default", "frequency": {"mode": "thresholds", "cuts": [2, 4]}},
            format="json",
        )
    # then
    assert updated.status_code == 200, updated.json()
    assert updated.json()["rfm_model"]["version"] == 2
    model = RfmModel.objects.get(slug="default")
    assert RfmRun.objects.filter(model=model).count() == 2
    # when
    with after_commit():
        recomputed = api_client.post(
            "/api/rfmModels.recompute", {"workspace_id": "acme", "id": "default"}, format="json"
        )
    # then
    assert recomputed.status_code == 202
    assert RfmRun.objects.filter(model=model).count() == 3
    # when
    deleted = api_client.post("/api/rfmModels.delete", {"workspace_id": "acme", "id": "default"}, format="json")
    # then
    assert deleted.json() == {"deleted": True}
    assert api_client.get("/api/rfmModels.get", {"workspace_id": "acme", "id": "default"}).status_code == 404
    assert not RfmScore.objects.filter(model=model).exists()
    assert _create(api_client, after_commit, id="default").status_code == 201


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"id": "Bad Id"}, "id"),
        ({"id": "m", "scale": 4}, "scale"),
        ({"id": "m", "recency": {"mode": "thresholds", "cuts": [7, 30, 20, 90]}}, "recency.cuts[2]"),
        ({"id": "m", "monetary": {"mode": "thresholds", "cuts": ["1.001", "2", "3", "4"]}}, "monetary.cuts[0]"),
        ({"id": "m", "scale": 3, "group_map": [{"name": "top", "r": [3, 3]}]}, "group_map"),
        ({"id": "m", "goal_types": ["refund"]}, "goal_types[0]"),
        ({"id": "m", "window_days": 0}, "window_days"),
        ({"id": "m", "timezone": "Mars/Olympus"}, "timezone"),
        ({"id": "m", "preset": "nope"}, "preset"),
        ({"id": "m", "group_map": 7}, "group_map"),
    ],
)
def test_bad_input_is_a_400_naming_the_path_and_writes_nothing(
    api_client: APIClient, after_commit: AfterCommit, body: dict[str, Any], path: str
) -> None:
    """Each invalid configuration is refused at its own path; no model is stored."""
    # when
    response = _create(api_client, after_commit, **body)
    # then
    assert response.status_code == 400
    assert path in response.json()["details"], response.json()
    assert not RfmModel.objects.exists()


def test_a_taken_id_and_an_unknown_model_are_refused(api_client: APIClient, after_commit: AfterCommit) -> None:
    """A live model's id is a 400 at id; reading or changing an unknown model is a 404."""
    # given
    _create(api_client, after_commit, id="default")
    # when
    again = _create(api_client, after_commit, id="default")
    # then
    assert again.status_code == 400 and "id" in again.json()["details"]
    assert api_client.get("/api/rfm.distribution", {"workspace_id": "acme", "model": "nope"}).status_code == 404
    missing = api_client.post(
        "/api/rfmModels.update", {"workspace_id": "acme", "id": "nope", "name": "x"}, format="json"
    )
    assert missing.status_code == 404


def test_preview_runs_a_configuration_without_writing(api_client: APIClient, buyers: list[int]) -> None:
    """Counts per group, cells, cut points and a sample, and no model, run or score stored."""
    # when
    response = api_client.post(
        "/api/rfmModels.preview", {"workspace_id": "acme", "scale": 3, "window_days": None}, format="json"
    )
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["contacts"], body["customers"]) == (12, 10)
    counts = {g["group"]: g["count"] for g in body["groups"]}
    assert sum(counts.values()) == 12 and counts["prospect"] == 2
    assert sum(c["count"] for c in body["cells"]) == 10
    assert len(body["sample"]) == 10 and body["sample"][0]["monetary"] == "502.50"  # 5 orders of 100.50
    assert len(body["cutpoints"]["recency"]["values"]) == 3
    assert not RfmModel.objects.exists() and not RfmScore.objects.exists()
    bad = api_client.post(
        "/api/rfmModels.preview", {"workspace_id": "acme", "scale": 3, "group_map": "classic11"}, format="json"
    )
    assert bad.status_code == 400 and "group_map" in bad.json()["details"]


def test_distribution_sums_to_every_contact(
    api_client: APIClient, after_commit: AfterCommit, buyers: list[int]
) -> None:
    """Group sizes cover every contact; shares of customers and revenue sum to 100; cells to N."""
    # given
    _create(api_client, after_commit, id="default")
    # when
    body = api_client.get("/api/rfm.distribution", {"workspace_id": "acme", "model": "default"}).json()
    # then
    assert (body["contacts"], body["customers"]) == (12, 10)
    assert sum(g["count"] for g in body["groups"]) == 12
    scored = [g for g in body["groups"] if g["group"] not in ("prospect", "lapsed")]
    assert round(sum(g["share_of_customers"] for g in scored)) == 100
    assert round(sum(g["share_of_revenue"] for g in scored)) == 100
    assert sum(c["count"] for c in body["cells"]) == 10
    champions = next(g for g in body["groups"] if g["count"] and g["group"] not in ("prospect", "lapsed"))
    assert champions["median"]["frequency"] is not None
    assert body["cutpoints"]["recency"]["mode"] == "quantile"


def test_contacts_of_a_group_by_cursor_pages_and_as_csv(
    api_client: APIClient, after_commit: AfterCommit, buyers: list[int]
) -> None:
    """Pages of 3 walk a group's contacts once each; the CSV holds the same rows; a cell works too."""
    # given
    _create(api_client, after_commit, id="default", scale=3)
    model = RfmModel.objects.get(slug="default")
    groups = dict(RfmScore.objects.filter(model=model).values_list("contact_id", "group"))
    group = str(max(set(groups.values()), key=list(groups.values()).count))
    # when
    seen: list[int] = []
    cursor = ""
    while True:
        page = api_client.get(
            "/api/rfm.contacts",
            {"workspace_id": "acme", "model": "default", "group": group, "limit": "3", "cursor": cursor},
        ).json()
        seen += [c["contact_id"] for c in page["contacts"]]
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    # then
    assert seen == sorted(c for c, g in groups.items() if g == group)
    exported = api_client.get(
        "/api/rfm.contacts", {"workspace_id": "acme", "model": "default", "group": group, "output": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO(exported.getvalue().decode())))
    assert [int(r["contact_id"]) for r in rows] == seen
    cell = api_client.get("/api/rfm.contacts", {"workspace_id": "acme", "model": "default", "r": "3", "f": "3"}).json()
    assert all((c["r"], c["f"]) == (3, 3) for c in cell["contacts"])
    assert api_client.get("/api/rfm.contacts", {"workspace_id": "acme", "model": "default"}).status_code == 400
    bad_cursor = api_client.get(
        "/api/rfm.contacts", {"workspace_id": "acme", "model": "default", "group": group, "cursor": "x"}
    )
    assert bad_cursor.status_code == 400 and "cursor" in bad_cursor.json()["details"]


def test_transitions_between_two_instants_or_dates(
    api_client: APIClient, after_commit: AfterCommit, workspace: Workspace
) -> None:
    """Counts by (group as of from, group as of to) from the change log; a date means the end of
    that day; from before the first run and to before from are 400s."""
    # given
    ids = store_contacts(workspace, 3)
    t0 = timezone.now() - dt.timedelta(days=10)
    store_events(workspace, [purchase(ids[0], t0 - dt.timedelta(days=400), "10.00")])
    model = services.rfm_model_create(workspace_id="acme", slug="default", name="RFM", settings={"preset": "klaviyo"})
    services.rfm_model_compute(model_pk=model.pk, now=t0)
    store_events(workspace, [purchase(ids[1], t0 + dt.timedelta(days=1), "10.00")])
    services.rfm_model_compute(model_pk=model.pk, now=t0 + dt.timedelta(days=2))

    def matrix(**params: str) -> Any:
        return api_client.get("/api/rfm.transitions", {"workspace_id": "acme", "model": "default", **params})

    # when
    response = matrix(
        **{"from": (t0 + dt.timedelta(hours=1)).isoformat(), "to": (t0 + dt.timedelta(days=3)).isoformat()}
    )
    # then
    assert response.status_code == 200, response.json()
    counts = {(row["from"], row["to"]): row["count"] for row in response.json()["transitions"]}
    assert counts[("prospect", "prospect")] == 1
    assert sum(counts.values()) == 3
    assert any(f == "prospect" and t != "prospect" and n == 1 for (f, t), n in counts.items())
    # a date: the end of that day in the model's timezone (the workspace's: UTC)
    same = matrix(
        **{"from": (t0 + dt.timedelta(hours=1)).isoformat(), "to": (t0 + dt.timedelta(days=3)).date().isoformat()}
    )
    assert same.json()["transitions"] == response.json()["transitions"]
    # then: refused
    early = matrix(**{"from": (t0 - dt.timedelta(days=1)).isoformat()})
    assert early.status_code == 400 and "from" in early.json()["details"]
    backwards = matrix(
        **{"from": (t0 + dt.timedelta(days=2)).isoformat(), "to": (t0 + dt.timedelta(days=1)).isoformat()}
    )
    assert backwards.status_code == 400 and "to" in backwards.json()["details"]
    assert matrix(**{"from": "yesterday"}).status_code == 400
    assert matrix(**{"from": "2026-05-01T10:00:00"}).status_code == 400  # no offset


def test_contacts_get_carries_each_models_scores(
    api_client: APIClient, after_commit: AfterCommit, buyers: list[int]
) -> None:
    """contacts.get lists the contact's r, f, m, group, previous group by model id; a prospect too."""
    # given
    _create(api_client, after_commit, id="default")
    _create(api_client, after_commit, id="k", preset="klaviyo")
    buyer = Contact.objects.get(pk=buyers[0])
    prospect = Contact.objects.get(pk=buyers[11])
    # when
    got = api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": buyer.email}).json()["contact"]
    other = api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": prospect.email}).json()["contact"]
    # then
    assert set(got["rfm"]) == {"default", "k"}
    score = RfmScore.objects.get(model__slug="default", contact=buyer)
    assert got["rfm"]["default"]["group"] == score.group
    assert (got["rfm"]["default"]["r"], got["rfm"]["default"]["frequency"]) == (score.r, score.frequency)
    assert other["rfm"]["default"]["group"] == "prospect" and other["rfm"]["default"]["r"] is None


def test_contacts_list_carries_each_models_scores_in_a_fixed_number_of_queries(
    api_client: APIClient, after_commit: AfterCommit, buyers: list[int], django_assert_max_num_queries: Any
) -> None:
    """contacts.list gives each contact of the page its scores under every live model, exactly as
    contacts.get does (prospect when it has no row), reading them once per page: a page of 13
    costs the queries of a page of 3, within the pinned budget."""
    # given two models, one deleted, and a contact created after their runs (no score row)
    _create(api_client, after_commit, id="default")
    _create(api_client, after_commit, id="k", preset="klaviyo")
    _create(api_client, after_commit, id="gone")
    api_client.post("/api/rfmModels.delete", {"workspace_id": "acme", "id": "gone"}, format="json")
    late = Contact.objects.get(pk=store_contacts(Contact.objects.get(pk=buyers[0]).workspace, 1)[0])

    # when
    with CaptureQueriesContext(connection) as small:
        api_client.get("/api/contacts.list", {"workspace_id": "acme", "limit": "3"})
    with django_assert_max_num_queries(LIST_MAX_QUERIES), CaptureQueriesContext(connection) as full:
        listed = api_client.get("/api/contacts.list", {"workspace_id": "acme", "limit": "13"})

    # then
    assert len(full.captured_queries) == len(small.captured_queries)
    # the page's scores are read by contact id alone, not joined to every contact of the
    # workspace for the scores' default ordering (50 ms at 100k contacts)
    (read,) = [q["sql"] for q in full.captured_queries if 'FROM "rfm_rfmscore"' in q["sql"]]
    assert "JOIN" not in read and "ORDER BY" not in read, read
    contacts = listed.json()["contacts"]
    assert len(contacts) == 13 and contacts[0]["email"] == late.email
    for contact in contacts:
        got = api_client.get("/api/contacts.get", {"workspace_id": "acme", "email": contact["email"]}).json()
        assert contact["rfm"] == got["contact"]["rfm"]
        assert set(contact["rfm"]) == {"default", "k"}
    assert contacts[0]["rfm"]["k"]["group"] == "prospect" and contacts[0]["rfm"]["k"]["r"] is None
    scores = dict(RfmScore.objects.filter(model__slug="default").values_list("contact__email", "group"))
    assert {c["email"]: c["rfm"]["default"]["group"] for c in contacts[1:]} == {
        c["email"]: scores[c["email"]] for c in contacts[1:]
    }


def test_the_openapi_schema_lists_every_rfm_endpoint(api_client: APIClient) -> None:
    """drf-spectacular documents all ten RPC names."""
    # when
    schema = api_client.get("/api/schema/", {"format": "json"})
    # then
    assert schema.status_code == 200
    operations = {op["operationId"] for path in schema.json()["paths"].values() for op in path.values()}
    assert operations >= {
        "rfmModels.create",
        "rfmModels.update",
        "rfmModels.delete",
        "rfmModels.get",
        "rfmModels.list",
        "rfmModels.recompute",
        "rfmModels.preview",
        "rfm.distribution",
        "rfm.transitions",
        "rfm.contacts",
    }
