"""Writes for tenancy: workspaces, membership and API keys."""

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from .models import ApiKey, Workspace, WorkspaceMembership, hash_secret

KEY_PREFIX = "ep_"


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str


@transaction.atomic
def workspace_create(
    *, workspace_id: str, name: str, timezone_name: str = "UTC", owner: User | None = None
) -> Workspace:
    workspace = Workspace(id=workspace_id, name=name, timezone=timezone_name)
    workspace.full_clean()
    workspace.save(force_insert=True)
    if owner is not None:
        workspace_member_add(workspace=workspace, user=owner, role=WorkspaceMembership.Role.OWNER)
    return workspace


@transaction.atomic
def workspace_member_add(
    *, workspace: Workspace, user: User, role: str = WorkspaceMembership.Role.MEMBER
) -> WorkspaceMembership:
    membership, _ = WorkspaceMembership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def api_key_create(*, workspace: Workspace, name: str, created_by: User | None = None) -> IssuedKey:
    """Issue a key; the secret is returned once and only its hash is stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        workspace=workspace,
        name=name,
        prefix=secret[:10],
        key_hash=hash_secret(secret),
        created_by=created_by,
    )
    api_key.full_clean()
    api_key.save(force_insert=True)
    return IssuedKey(api_key=api_key, secret=secret)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
