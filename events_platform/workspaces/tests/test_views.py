"""API keys page: create (secret shown once), list, confirm-then-revoke; members of the workspace only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from events_platform.workspaces.models import ApiKey, Workspace, hash_secret
from events_platform.workspaces.services import api_key_create, workspace_create

SECRET = re.compile(r"ep_[\w-]{40,}")
KEYS_PAGE_MAX_QUERIES = 4  # session, user, workspaces, keys with their creators
URL = "/settings/api-keys/"


@pytest.fixture
def other_workspace(db: None) -> Workspace:
    return workspace_create(workspace_id="globex", name="Globex")


def test_api_keys_page_requires_login(client: Client, workspace: Workspace) -> None:
    """Anonymous visitors are sent to log in."""
    # when
    response = client.get(URL)
    # then
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_creating_a_key_shows_its_secret_once_and_stores_its_hash(
    member_client: Client, member: User, workspace: Workspace
) -> None:
    """The POST response shows the secret with a copy button; only its hash is stored; reloading the list
    does not show it again."""
    # when
    response = member_client.post(URL, {"name": "  Shopify  "})
    # then
    html = response.content.decode()
    assert response.status_code == 201
    secrets = set(SECRET.findall(html))
    assert len(secrets) == 1
    secret = secrets.pop()
    api_key = ApiKey.objects.get(workspace=workspace, name="Shopify")
    assert api_key.key_hash == hash_secret(secret) and secret.startswith(api_key.prefix)
    assert api_key.created_by == member
    assert 'data-copy="#new-secret"' in html and 'id="new-secret"' in html
    assert "_auth_user_id" in member_client.session and secret not in str(dict(member_client.session))
    assert not SECRET.findall(member_client.get(URL).content.decode())


def test_the_page_showing_a_new_secret_is_never_stored_by_a_cache(member_client: Client, workspace: Workspace) -> None:
    """The response that shows a new key's secret says Cache-Control: no-store (no browser or
    proxy cache, no back-button copy); so does the list."""
    # when
    created = member_client.post(URL, {"name": "Shopify"})
    listed = member_client.get(URL)
    # then
    assert created.status_code == 201 and SECRET.search(created.content.decode())
    for response in (created, listed):
        directives = {part.strip() for part in response["Cache-Control"].split(",")}
        assert {"no-store", "private"} <= directives


def test_create_errors_keep_the_input(member_client: Client, workspace: Workspace) -> None:
    """A name that is too long is refused next to the field, and what was typed stays in it."""
    # given
    name = "x" * 101
    # when
    response = member_client.post(URL, {"name": name})
    blank = member_client.post(URL, {"name": ""})
    # then
    assert response.status_code == 400
    assert f'value="{name}"' in response.content.decode()
    assert "at most 100 characters" in response.content.decode()
    assert blank.status_code == 400 and b"This field is required." in blank.content
    assert not ApiKey.objects.exists()


def test_list_shows_keys_of_the_current_workspace_only(
    member_client: Client, workspace: Workspace, other_workspace: Workspace
) -> None:
    """The list has name, prefix, created, last used and status of this workspace's keys; never another's."""
    # given
    mine = api_key_create(workspace=workspace, name="zapier").api_key
    revoked = api_key_create(workspace=workspace, name="old-import").api_key
    member_client.post(f"{URL}{revoked.pk}/revoke/")
    api_key_create(workspace=other_workspace, name="globex-secret-key")
    # when
    response = member_client.get(URL)
    # then
    html = response.content.decode()
    assert "zapier" in html and f"{mine.prefix}…" in html and "never" in html
    assert "old-import" in html and ">revoked<" in html
    assert "globex-secret-key" not in html


def test_revoke_asks_for_confirmation_then_revokes(member_client: Client, workspace: Workspace) -> None:
    """GET shows a confirmation form (CSRF-protected) and changes nothing; POST revokes and says so."""
    # given
    api_key = api_key_create(workspace=workspace, name="zapier").api_key
    url = f"{URL}{api_key.pk}/revoke/"
    # when
    confirm = member_client.get(url)
    api_key.refresh_from_db()
    still_active = api_key.is_active
    done = member_client.post(url, follow=True)
    # then
    assert still_active
    assert b"csrfmiddlewaretoken" in confirm.content and b"Revoke key" in confirm.content
    api_key.refresh_from_db()
    assert not api_key.is_active
    assert done.redirect_chain == [(URL, 302)]
    assert "is revoked" in done.content.decode()


def test_keys_of_another_workspace_cannot_be_revoked(
    member_client: Client, other_workspace: Workspace, workspace: Workspace
) -> None:
    """Revoking a key of a workspace the user is not a member of is a 404, and the key stays active."""
    # given
    foreign = api_key_create(workspace=other_workspace, name="globex").api_key
    # when
    shown = member_client.get(f"{URL}{foreign.pk}/revoke/")
    posted = member_client.post(f"{URL}{foreign.pk}/revoke/")
    # then
    assert (shown.status_code, posted.status_code) == (404, 404)
    foreign.refresh_from_db()
    assert foreign.is_active


def test_forms_refuse_posts_without_csrf_token(member: User, workspace: Workspace) -> None:
    """Create and revoke need the CSRF token."""
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    api_key = api_key_create(workspace=workspace, name="zapier").api_key
    # when
    create = client.post(URL, {"name": "sneaky"})
    revoke = client.post(f"{URL}{api_key.pk}/revoke/")
    # then
    assert (create.status_code, revoke.status_code) == (403, 403)
    assert not ApiKey.objects.filter(name="sneaky").exists()
    api_key.refresh_from_db()
    assert api_key.is_active


def test_every_input_has_a_label(member_client: Client, workspace: Workspace) -> None:
    """Each visible input of the page is named by a <label for=...>."""
    # when
    html = member_client.get(URL).content.decode()
    # then
    ids = re.findall(r'<(?:input|select)(?![^>]*type="hidden")[^>]*\sid="([^"]+)"', html)
    assert ids
    for input_id in ids:
        assert f'for="{input_id}"' in html


def test_api_keys_page_query_count_does_not_grow_with_keys(
    member_client: Client, member: User, workspace: Workspace, django_assert_max_num_queries: Any
) -> None:
    """Five keys or fifty (with their creators): the same few queries."""
    for count in (5, 50):
        # given
        ApiKey.objects.all().delete()
        for n in range(count):
            api_key_create(workspace=workspace, name=f"key {n}", created_by=member)
        # when
        with django_assert_max_num_queries(KEYS_PAGE_MAX_QUERIES):
            response = member_client.get(URL)
        # then
        assert len(response.context["keys"]) == count
