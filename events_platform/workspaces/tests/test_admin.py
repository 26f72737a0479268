"""Admin for workspaces and API keys: keys are issued by the service and their secret shown once."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import queries_with_5_and_30_rows
from events_platform.workspaces.models import ApiKey, Workspace, WorkspaceMembership, hash_secret
from events_platform.workspaces.services import api_key_create, workspace_create, workspace_member_add

# Generous but fixed: the point is that it does not grow with the number of rows.
CHANGELIST_MAX_QUERIES = 12
SECRET = re.compile(r"ep_[\w-]{40,}")


def upsert_status(secret: str, workspace_id: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = {"workspace_id": workspace_id, "email": "a@example.com", "event_name": "user.signup", "external_id": "1"}
    return client.post("/api/customEvents.upsert", body, format="json").status_code


def test_api_key_add_shows_secret_once_and_stores_only_its_hash(admin_client: Client, workspace: Workspace) -> None:
    """Adding a key asks only workspace and name; the secret is shown in one message, the row keeps
    its hash (never the secret), and the key authenticates."""
    # given
    add_url = reverse("admin:workspaces_apikey_add")
    form = admin_client.get(add_url).context["adminform"].form
    assert set(form.fields) == {"workspace", "name"}
    # when
    response = admin_client.post(add_url, {"workspace": workspace.id, "name": "zapier"}, follow=True)
    # then
    shown = SECRET.findall(response.content.decode())
    assert len(shown) == 1
    secret = shown[0]
    api_key = ApiKey.objects.get(name="zapier")
    assert api_key.key_hash == hash_secret(secret)
    assert secret.startswith(api_key.prefix)
    assert api_key.created_by is not None and api_key.created_by.username == "admin"
    assert upsert_status(secret, workspace.id) == 200
    # the message was consumed: the next page does not show the secret again
    assert not SECRET.findall(admin_client.get(reverse("admin:workspaces_apikey_changelist")).content.decode())


def test_api_key_change_page_never_shows_hash(admin_client: Client, workspace: Workspace) -> None:
    """The key's change page shows prefix and dates but neither the hash nor an editable workspace."""
    # given
    issued = api_key_create(workspace=workspace, name="ci")
    # when
    response = admin_client.get(reverse("admin:workspaces_apikey_change", args=[issued.api_key.pk]))
    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert issued.api_key.prefix in page
    assert issued.api_key.key_hash not in page and "key_hash" not in page
    assert set(response.context["adminform"].form.fields) == {"name"}


def test_revoke_action_revokes_keys_through_service(admin_client: Client, workspace: Workspace) -> None:
    """ "Revoke selected keys" sets revoked_at on the chosen keys only, and they stop authenticating."""
    # given
    revoked, kept = api_key_create(workspace=workspace, name="old"), api_key_create(workspace=workspace, name="new")
    # when
    response = admin_client.post(
        reverse("admin:workspaces_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [revoked.api_key.pk]},
    )
    # then
    assert response.status_code == 302
    revoked.api_key.refresh_from_db()
    kept.api_key.refresh_from_db()
    assert revoked.api_key.revoked_at is not None and kept.api_key.revoked_at is None
    assert upsert_status(revoked.secret, workspace.id) == 401
    assert upsert_status(kept.secret, workspace.id) == 200


@pytest.mark.django_db
def test_workspace_add_goes_through_validation_and_adds_members(admin_client: Client) -> None:
    """A workspace added in the admin is created with its members from the inline."""
    # given
    member = get_user_model().objects.create_user(username="bob", password="x")
    data = {
        "id": "shop",
        "name": "Shop",
        "timezone": "Europe/Paris",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-0-user": member.pk,
        "memberships-0-role": "owner",
    }
    # when
    response = admin_client.post(reverse("admin:workspaces_workspace_add"), data)
    # then
    assert response.status_code == 302, response.context["errors"] if response.context else response
    workspace = Workspace.objects.get(pk="shop")
    assert workspace.timezone == "Europe/Paris"
    assert WorkspaceMembership.objects.get(workspace=workspace).user == member


@pytest.mark.django_db
def test_workspace_add_rejects_bad_timezone(admin_client: Client) -> None:
    """The admin form refuses what the service refuses (an unknown timezone)."""
    # given
    data = {"id": "shop", "name": "Shop", "timezone": "Nowhere/Else"}
    data |= {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}
    # when
    response = admin_client.post(reverse("admin:workspaces_workspace_add"), data)
    # then
    assert response.status_code == 200
    assert "IANA timezone" in response.content.decode()
    assert not Workspace.objects.exists()


def _workspaces(count: int) -> None:
    user = get_user_model().objects.get(username="admin")
    for n in range(Workspace.objects.count(), count):
        workspace = workspace_create(workspace_id=f"ws_{n:03d}", name=f"Workspace {n}")
        workspace_member_add(workspace=workspace, user=user)


def _api_keys(count: int) -> None:
    workspace = Workspace.objects.first() or workspace_create(workspace_id="keys", name="Keys")
    for n in range(ApiKey.objects.count(), count):
        # Keys of different workspaces, so a per-row workspace lookup would show.
        target = workspace if n % 2 else workspace_create(workspace_id=f"k_{n:03d}", name=f"K {n}")
        api_key_create(workspace=target, name=f"key {n}")


@pytest.mark.parametrize(
    ("url_name", "make_rows"),
    [("admin:workspaces_workspace_changelist", _workspaces), ("admin:workspaces_apikey_changelist", _api_keys)],
)
def test_changelists_query_count_does_not_grow_with_rows(
    admin_client: Client, django_assert_max_num_queries: Callable, url_name: str, make_rows: Callable[[int], None]
) -> None:
    """Workspace and API-key changelists cost the same number of queries for 5 rows as for 30."""
    # given / when
    with_5, with_30 = queries_with_5_and_30_rows(
        admin_client, reverse(url_name), make_rows, django_assert_max_num_queries, CHANGELIST_MAX_QUERIES
    )
    # then
    assert with_30 == with_5
