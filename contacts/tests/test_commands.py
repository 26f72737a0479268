"""seed_demo, import_events and demo_setup: data in through the services, reported honestly."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.test import Client
from pytest_django import Settings
from rest_framework.test import APIClient

from contacts.management.commands.demo_setup import credentials_read
from contacts.models import Contact, CustomEvent, GoalType, TimelineEntry
from events_platform.workspaces.models import ApiKey, Workspace, WorkspaceMembership


def run(*args: str, **options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def jsonl(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def event(n: int, **fields: object) -> dict[str, object]:
    return {
        "email": f"buyer{n}@example.com",
        "event_name": "order.completed",
        "external_id": f"o{n}",
        "occurred_at": "2026-01-01T10:00:00Z",
        "goal_type": "purchase",
        "goal_value": 10 + n,
        "properties": {"currency": "EUR"},
        **fields,
    }


def table_counts() -> tuple[int, int, int]:
    return Contact.objects.count(), CustomEvent.objects.count(), TimelineEntry.objects.count()


# --- seed_demo ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_creates_realistic_data_through_the_import_path() -> None:
    """seed_demo creates the demo workspace, named contacts, and exactly the asked number of events
    of every kind (purchases with currency, negative refunds, subscriptions, leads, sign-ups,
    goal-less events, a few soft-deleted), all with source "import" and timeline entries."""
    # given: an empty database
    # when
    out, _ = run("seed_demo", "--contacts", "40", "--events", "600")
    # then
    assert Workspace.objects.filter(pk="demo").exists()
    contacts = Contact.objects.filter(workspace_id="demo")
    assert contacts.count() == 40
    assert not contacts.filter(first_name="").exists() and not contacts.filter(last_name="").exists()
    events = CustomEvent.objects.filter(workspace_id="demo")
    assert events.count() == 600
    assert set(events.values_list("source", flat=True)) == {"import"}
    by_name = dict(events.values_list("event_name").annotate(n=Count("id")))
    assert set(by_name) == {
        "order.completed",
        "order.refunded",
        "subscription.started",
        "lead.created",
        "user.signup",
        "page.viewed",
        "email.clicked",
    }
    orders = events.filter(event_name="order.completed")
    assert all(e.properties["currency"] in {"EUR", "USD", "GBP"} for e in orders)
    assert not orders.filter(goal_value__lte=0).exists()
    refunds = events.filter(event_name="order.refunded")
    assert not refunds.exclude(goal_type=GoalType.PURCHASE, goal_value__lt=0).exists()
    assert not events.filter(event_name="subscription.started").exclude(goal_value__gt=0).exists()
    assert set(events.filter(event_name="lead.created").values_list("goal_type", flat=True)) == {"lead"}
    assert set(events.filter(event_name="user.signup").values_list("goal_type", flat=True)) == {"signup"}
    assert not events.filter(event_name__in=["page.viewed", "email.clicked"], goal_type__isnull=False).exists()
    assert 0 < events.filter(deleted_at__isnull=False).count() < 30
    span = max(e.occurred_at for e in events) - min(e.occurred_at for e in events)
    assert span.days > 300
    assert TimelineEntry.objects.filter(kind__startswith="custom_event.").count() == 600
    assert "600 created" in out


@pytest.mark.django_db
def test_seed_demo_rerun_is_idempotent() -> None:
    """Running seed_demo again with the same arguments upserts the same events: nothing new is written
    and it reports them unchanged."""
    # given
    run("seed_demo", "--contacts", "30", "--events", "200")
    before = table_counts()
    # when
    out, _ = run("seed_demo", "--contacts", "30", "--events", "200")
    # then
    assert table_counts() == before
    assert "contacts 30 unchanged" in out and "events 200 unchanged" in out


# --- import_events -----------------------------------------------------------------------


def test_import_jsonl_writes_valid_lines_and_reports_rejected_ones(workspace: Workspace, tmp_path: Path) -> None:
    """Valid JSON Lines are upserted with source "import"; invalid ones are skipped and listed with
    their line number, the field and the API's reason; blank lines are ignored."""
    # given
    path = jsonl(
        tmp_path / "events.jsonl",
        event(1),
        "",
        event(2, goal_value=None, email="never@example.com"),
        "{not json",
        [1, 2],
        event(3, event_name="Bad Name"),
        event(4, source="shopify"),
        event(5, workspace_id="other"),
        event(6, properties={"x": 1}, goal_type="lead", goal_value=None),
    )
    # when
    out, _ = run("import_events", str(path), "--workspace", workspace.id)
    # then
    assert set(CustomEvent.objects.values_list("external_id", "source")) == {
        ("o1", "import"),
        ("o4", "shopify"),
        ("o6", "import"),
    }
    assert "3 created, 0 updated, 0 unchanged, 0 deleted, 0 restored, 5 rejected" in out
    assert "line 3: goal_value: Required when goal_type is 'purchase'." in out
    assert "line 4: Not valid JSON" in out
    assert "line 5: Each event must be a JSON object." in out
    assert "line 6: event_name: Use only lowercase letters" in out
    assert "line 8: workspace_id: " in out
    assert not Contact.objects.filter(email="never@example.com").exists()


def test_import_csv_with_empty_cells_json_properties_and_quoted_newlines(workspace: Workspace, tmp_path: Path) -> None:
    """CSV rows become events (empty cells are omitted fields, properties is a JSON object string);
    line numbers in the report are the file's, even after a quoted cell spanning two lines."""
    # given
    path = tmp_path / "events.csv"
    path.write_text(
        "email,event_name,external_id,occurred_at,goal_type,goal_name,goal_value,properties,deleted_at\n"
        'ann@example.com,order.completed,c1,2026-02-01T00:00:00Z,purchase,Order,12.50,"{""currency"": ""USD""}",\n'
        'bob@example.com,lead.created,"two\nlines",2026-02-02T00:00:00Z,lead,,,,\n'
        "cat@example.com,order.completed,c3,2026-02-03T00:00:00Z,purchase,,,,\n"
        "dan@example.com,page.viewed,c4,,,,,{oops,\n"
        "eve@example.com,page.viewed,c5,2026-02-04T00:00:00Z,,,,,2026-02-05T00:00:00Z\n"
    )
    # when
    out, _ = run("import_events", str(path), "--workspace", workspace.id)
    # then
    order = CustomEvent.objects.get(external_id="c1")
    assert (order.goal_type, order.goal_name, order.goal_value) == ("purchase", "Order", Decimal("12.50"))
    assert order.properties == {"currency": "USD"} and order.source == "import"
    lead = CustomEvent.objects.get(external_id="two\nlines")
    assert (lead.goal_type, lead.goal_value, lead.properties) == ("lead", None, {})
    assert CustomEvent.objects.get(external_id="c5").deleted_at is not None
    assert "3 created" in out and "2 rejected" in out
    assert "line 5: goal_value: Required when goal_type is 'purchase'." in out
    assert "line 6: properties: Not valid JSON" in out


def test_import_in_batches_and_reimport_is_unchanged(workspace: Workspace, tmp_path: Path) -> None:
    """A file longer than one batch is fully imported; importing it again changes nothing."""
    # given
    path = jsonl(tmp_path / "many.jsonl", *(event(n, email=f"c{n % 9}@example.com") for n in range(120)))
    # when
    first, _ = run("import_events", str(path), "--workspace", workspace.id)
    counts = table_counts()
    second, _ = run("import_events", str(path), "--workspace", workspace.id)
    # then
    assert counts[:2] == (9, 120)
    assert "120 created" in first
    assert table_counts() == counts
    assert "0 created, 0 updated, 120 unchanged" in second


def test_import_soft_deletes_and_restores_like_the_api(workspace: Workspace, tmp_path: Path) -> None:
    """Lines with deleted_at soft delete stored events, lines without it restore them, and the
    summary counts those operations."""
    # given
    run("import_events", str(jsonl(tmp_path / "a.jsonl", event(1), event(2))), "--workspace", workspace.id)
    # when
    deleted, _ = run(
        "import_events",
        str(jsonl(tmp_path / "b.jsonl", event(1, deleted_at="2026-01-02T00:00:00Z"))),
        "--workspace",
        workspace.id,
    )
    restored, _ = run("import_events", str(jsonl(tmp_path / "c.jsonl", event(1))), "--workspace", workspace.id)
    # then
    assert "1 deleted" in deleted and "1 restored" in restored
    assert CustomEvent.objects.get(external_id="o1").deleted_at is None
    operations = TimelineEntry.objects.filter(custom_event__external_id="o1").values_list("operation", flat=True)
    assert sorted(operations) == ["delete", "insert", "restore"]


def test_import_format_option_overrides_extension(workspace: Workspace, tmp_path: Path) -> None:
    """--format csv reads a file whatever its extension."""
    # given
    path = tmp_path / "export.txt"
    path.write_text("email,event_name,external_id\nzed@example.com,user.signup,s1\n")
    # when
    out, _ = run("import_events", str(path), "--workspace", workspace.id, "--format", "csv")
    # then
    assert "1 created" in out
    assert CustomEvent.objects.get(external_id="s1").contact.email == "zed@example.com"


def test_import_rejects_non_utf8_line_and_keeps_going(workspace: Workspace, tmp_path: Path) -> None:
    """A line that is not UTF-8 is reported; the lines around it are imported."""
    # given
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        json.dumps(event(1)).encode() + b"\n" + b'{"email": "\xff"}\n' + json.dumps(event(2)).encode() + b"\n"
    )
    # when
    out, _ = run("import_events", str(path), "--workspace", workspace.id)
    # then
    assert CustomEvent.objects.count() == 2
    assert "line 2: Not UTF-8 text." in out


@pytest.mark.django_db
def test_import_fails_only_for_unreadable_file_or_unknown_workspace(tmp_path: Path) -> None:
    """A missing file or workspace is a CommandError (non-zero exit); nothing is written."""
    # given
    Workspace.objects.create(id="shop", name="Shop")
    path = jsonl(tmp_path / "ok.jsonl", event(1))
    # when / then
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_events", str(tmp_path / "missing.jsonl"), "--workspace", "shop")
    with pytest.raises(CommandError, match="Workspace 'ghost' does not exist"):
        run("import_events", str(path), "--workspace", "ghost")
    assert table_counts() == (0, 0, 0)


def test_import_rejects_nul_in_properties_on_every_database(workspace: Workspace, tmp_path: Path) -> None:
    """\\u0000 in properties (which PostgreSQL's jsonb refuses) is rejected by validation on every
    database: the line is reported with its field, nothing of it is written (not even its
    contact), and the other events of its batch are still imported."""
    # given
    path = jsonl(
        tmp_path / "nul.jsonl", event(1), event(2, email="nul@example.com", properties={"note": "a\u0000b"}), event(3)
    )
    # when
    out, _ = run("import_events", str(path), "--workspace", workspace.id)
    # then
    assert sorted(CustomEvent.objects.values_list("external_id", flat=True)) == ["o1", "o3"]
    assert not Contact.objects.filter(email="nul@example.com").exists()
    assert "2 created" in out and "1 rejected" in out
    assert "line 2: properties: Must not contain the NUL character" in out


# --- demo_setup --------------------------------------------------------------------------


@pytest.fixture
def debug_on(settings: Settings) -> None:
    settings.DEBUG = True


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_demo_setup_seeds_and_prints_working_credentials(tmp_path: Path) -> None:
    """On an empty database demo_setup seeds the demo workspace, creates the admin owner and an API
    key, stores both secrets in the credentials file and prints the URL, login, key and a curl that
    works."""
    # given
    credentials = tmp_path / ".demo-credentials"
    # when
    out, _ = run("demo_setup", "--credentials-file", str(credentials), "--contacts", "10", "--events", "50")
    # then
    stored = credentials_read(credentials)
    assert credentials.stat().st_mode & 0o077 == 0
    assert Contact.objects.filter(workspace_id="demo").count() == 10
    assert CustomEvent.objects.filter(workspace_id="demo").count() == 50
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(stored["ADMIN_PASSWORD"])
    assert WorkspaceMembership.objects.get(workspace_id="demo", user=admin).role == "owner"
    assert "http://localhost:8000" in out
    assert stored["ADMIN_PASSWORD"] in out and stored["API_KEY"] in out
    assert "curl" in out and "/api/customEvents.upsert" in out
    signed_in = Client().post("/accounts/login/", {"username": "admin", "password": stored["ADMIN_PASSWORD"]})
    assert signed_in.status_code == 302 and SESSION_KEY in signed_in.wsgi_request.session
    body = json.loads(out.split("-d '", 1)[1].split("'", 1)[0])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {stored['API_KEY']}")
    response = client.post("/api/customEvents.upsert", body, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_demo_setup_rerun_reuses_credentials_and_data(tmp_path: Path) -> None:
    """A second run neither reseeds nor issues a new key or password: it prints the same ones."""
    # given
    credentials = tmp_path / ".demo-credentials"
    run("demo_setup", "--credentials-file", str(credentials), "--contacts", "5", "--events", "20")
    first = credentials_read(credentials)
    counts = (*table_counts(), ApiKey.objects.count())
    # when
    out, _ = run("demo_setup", "--credentials-file", str(credentials))
    # then
    assert credentials_read(credentials) == first
    assert (*table_counts(), ApiKey.objects.count()) == counts
    assert first["API_KEY"] in out and first["ADMIN_PASSWORD"] in out


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_demo_setup_with_lost_credentials_issues_new_ones(tmp_path: Path) -> None:
    """If the credentials file is lost, a new admin password and API key are issued and saved
    (the old key's secret cannot be recovered from its hash)."""
    # given
    credentials = tmp_path / ".demo-credentials"
    run("demo_setup", "--credentials-file", str(credentials), "--contacts", "5", "--events", "20")
    old = credentials_read(credentials)
    credentials.unlink()
    # when
    run("demo_setup", "--credentials-file", str(credentials))
    # then
    new = credentials_read(credentials)
    assert new["API_KEY"] != old["API_KEY"] and new["ADMIN_PASSWORD"] != old["ADMIN_PASSWORD"]
    assert get_user_model().objects.get(username="admin").check_password(new["ADMIN_PASSWORD"])
    assert ApiKey.objects.filter(workspace_id="demo").count() == 2


@pytest.mark.django_db
def test_demo_setup_refuses_to_run_with_debug_off(tmp_path: Path, settings: Settings) -> None:
    """Without DEBUG, demo_setup refuses: a superuser with a password in a file is for local work only."""
    # given
    settings.DEBUG = False
    # when
    with pytest.raises(CommandError, match="DEBUG"):
        run("demo_setup", "--credentials-file", str(tmp_path / "c"))
    # then
    assert not get_user_model().objects.exists()
