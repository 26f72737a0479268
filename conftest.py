"""Fixtures shared by every app's tests: a workspace, an API key for it, and a client using it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from events_platform.workspaces.models import ApiKey, Workspace
from events_platform.workspaces.services import api_key_create, workspace_create


@dataclass(frozen=True)
class IssuedApiKey:
    """An API key as a client holds it: the secret (shown once) and the workspace it opens."""

    secret: str
    workspace: Workspace
    api_key: ApiKey


@pytest.fixture
def workspace(db: None) -> Workspace:
    return workspace_create(workspace_id="acme", name="Acme")


@pytest.fixture
def api_key(workspace: Workspace) -> IssuedApiKey:
    issued = api_key_create(workspace=workspace, name="tests")
    return IssuedApiKey(secret=issued.secret, workspace=workspace, api_key=issued.api_key)


@pytest.fixture
def api_client(api_key: IssuedApiKey) -> APIClient:
    """A DRF client sending ``Authorization: Bearer <secret>`` of the ``api_key`` fixture."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.secret}")
    return client
