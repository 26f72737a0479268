"""createworkspace and createapikey: the CLI way to open a tenant and get a key for it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from events_platform.workspaces.models import ApiKey, Workspace, WorkspaceMembership, hash_secret


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_createworkspace_creates_workspace_with_owner_member() -> None:
    """createworkspace stores the workspace and makes --owner its owner member."""
    # given
    owner = get_user_model().objects.create_user(username="alice", password="x")
    # when
    out, _ = run("createworkspace", "shop_eu", "--name", "Shop EU", "--timezone", "Europe/Paris", "--owner", "alice")
    # then
    workspace = Workspace.objects.get(pk="shop_eu")
    assert (workspace.name, workspace.timezone) == ("Shop EU", "Europe/Paris")
    membership = WorkspaceMembership.objects.get(workspace=workspace)
    assert (membership.user, membership.role) == (owner, WorkspaceMembership.Role.OWNER)
    assert "shop_eu" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad-Slug", "--name", "X"], "lowercase letters"),
        (["ok_slug", "--name", "X", "--timezone", "Mars/Olympus"], "IANA timezone"),
        (["ok_slug", "--name", "X", "--owner", "nobody"], "No user named 'nobody'"),
    ],
)
def test_createworkspace_rejects_bad_input_with_clear_error(args: list[str], message: str) -> None:
    """A bad slug, timezone or unknown owner is a CommandError naming the problem; nothing is created."""
    # given / when
    with pytest.raises(CommandError, match=message):
        run("createworkspace", *args)
    # then
    assert not Workspace.objects.exists()


def test_createworkspace_refuses_duplicate_id(workspace: Workspace) -> None:
    """Creating a workspace whose id exists fails and leaves the existing one untouched."""
    # given: the "acme" workspace exists
    # when
    with pytest.raises(CommandError, match="already exists"):
        run("createworkspace", workspace.id, "--name", "Other")
    # then
    assert Workspace.objects.get(pk=workspace.id).name == workspace.name


def test_createapikey_prints_only_the_secret_which_authenticates(workspace: Workspace) -> None:
    """stdout is the secret alone (scriptable), the note goes to stderr, only the hash is stored,
    and the key works against customEvents.upsert."""
    # given: the "acme" workspace
    # when
    out, err = run("createapikey", workspace.id, "--name", "ci")
    # then
    secret = out.strip()
    assert out == secret + "\n"
    assert secret.startswith("ep_") and " " not in secret
    assert "only its hash is stored" in err and secret not in err
    api_key = ApiKey.objects.get(workspace=workspace, name="ci")
    assert api_key.key_hash == hash_secret(secret)
    assert secret not in {api_key.name, api_key.prefix, api_key.key_hash}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post(
        "/api/customEvents.upsert",
        {"workspace_id": workspace.id, "email": "a@example.com", "event_name": "user.signup", "external_id": "1"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["operation"] == "created"


@pytest.mark.django_db
def test_createapikey_unknown_workspace_is_an_error() -> None:
    """A key for a workspace that does not exist is refused and nothing is printed on stdout."""
    # given: no workspace
    out = StringIO()
    # when
    with pytest.raises(CommandError, match="does not exist"):
        call_command("createapikey", "ghost", "--name", "x", stdout=out, stderr=StringIO())
    # then
    assert out.getvalue() == ""
    assert not ApiKey.objects.exists()
