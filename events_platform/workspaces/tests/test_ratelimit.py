"""API rate limits per key: API_RATE_LIMIT requests per window, counted in Redis (REDIS_URL) or
the database, answered 429 with Retry-After and the RateLimit-* fields in our error format."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import checks
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from conftest import IssuedApiKey
from events_platform.testing import BASE_DIR, _database_url
from events_platform.workspaces import ratelimit
from events_platform.workspaces.services import api_key_create

URL = "/api/segments.templates?workspace_id=acme"


@pytest.fixture(params=["database", "redis"])
def counter(request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs with the database counter and with the Redis one (which needs REDIS_URL)."""
    monkeypatch.setattr(ratelimit, "_redis_retry_at", 0.0)
    if request.param == "database":
        settings.REDIS_URL = ""
    elif not django_settings.REDIS_URL:
        if os.environ.get("REQUIRE_SERVICES"):
            pytest.fail("REQUIRE_SERVICES is set but REDIS_URL is not")
        pytest.skip("needs REDIS_URL (a Redis server)")
    yield request.param


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_past_the_limit_a_key_gets_429_with_retry_after_and_ratelimit_fields(
    api_client: APIClient, counter: str, settings: Any
) -> None:
    """Three requests an hour: the first three pass and count down RateLimit-Remaining, the
    fourth is a JSON 429 in the error format with Retry-After equal to RateLimit-Reset."""
    # given
    settings.API_RATE_LIMIT = "3/h"

    # when
    passed = [api_client.get(URL) for _ in range(3)]
    refused = api_client.get(URL)

    # then
    assert [response.status_code for response in passed] == [200, 200, 200]
    assert [response["RateLimit-Remaining"] for response in passed] == ["2", "1", "0"]
    for response in [*passed, refused]:
        assert response["RateLimit-Limit"] == "3"
        assert response["RateLimit-Policy"] == "3;w=3600"
        assert 1 <= int(response["RateLimit-Reset"]) <= 3600
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert refused["RateLimit-Remaining"] == "0"
    assert refused["Retry-After"] == refused["RateLimit-Reset"]
    body = refused.json()
    assert body["details"] == {}
    assert body["error"].startswith("Rate limit exceeded: at most 3 requests per hour per API key (API_RATE_LIMIT).")


def test_each_key_has_its_own_count(api_client: APIClient, api_key: IssuedApiKey, counter: str, settings: Any) -> None:
    """A key that used up its window does not limit another key of the same workspace."""
    # given
    settings.API_RATE_LIMIT = "2/h"
    other = client_for(api_key_create(workspace=api_key.workspace, name="other").secret)
    for _ in range(3):
        api_client.get(URL)

    # when
    response = other.get(URL)

    # then
    assert api_client.get(URL).status_code == 429
    assert response.status_code == 200
    assert response["RateLimit-Remaining"] == "1"


def test_off_means_no_limit_and_no_fields(api_client: APIClient, counter: str, settings: Any) -> None:
    """API_RATE_LIMIT=off counts nothing and sends no RateLimit fields."""
    # given
    settings.API_RATE_LIMIT = "off"

    # when
    responses = [api_client.get(URL) for _ in range(5)]

    # then
    assert all(response.status_code == 200 for response in responses)
    assert all("RateLimit-Limit" not in response for response in responses)


def test_a_signed_in_person_using_the_api_is_not_counted(member_client: Client, settings: Any) -> None:
    """The limit is per API key: session requests (a marketer's browser) carry no RateLimit fields."""
    # given
    settings.API_RATE_LIMIT = "1/h"

    # when
    responses = [member_client.get(URL) for _ in range(3)]

    # then
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert "RateLimit-Limit" not in responses[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_redis_out_of_reach_requests_go_through(
    api_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that cannot be reached does not stop the API: requests pass, uncounted and without
    RateLimit fields, and Redis is not asked again for a few seconds."""
    # given
    monkeypatch.setattr(ratelimit, "_redis_retry_at", 0.0)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.API_RATE_LIMIT = "1/h"

    # when
    responses = [api_client.get(URL) for _ in range(3)]

    # then
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert "RateLimit-Limit" not in responses[0]
    assert ratelimit._redis_retry_at > 0


def test_a_bad_rate_is_a_system_check_error(settings: Any) -> None:
    """API_RATE_LIMIT that is not N/s, N/m, N/h or off fails `manage.py check`."""
    # given
    settings.API_RATE_LIMIT = "300 per second"

    # when
    errors = [message for message in checks.run_checks() if message.id == "workspaces.E001"]

    # then
    assert len(errors) == 1
    assert "API_RATE_LIMIT must look like 300/s" in errors[0].msg


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_another_web_process_counts_towards_the_same_limit(api_key: IssuedApiKey, counter: str, settings: Any) -> None:
    """Two requests made by another process with the same key use up a limit of 3 with this
    process's first: the fourth request, here, is refused."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (another process must share the test database)")
    # given another process (its own Django, the same database and Redis) sending two requests
    settings.API_RATE_LIMIT = "3/h"
    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from rest_framework.test import APIClient
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer {api_key.secret}")
        print([client.get("{URL}").status_code for _ in range(2)])
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "events_platform.settings",
        "DEBUG": "1",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "API_RATE_LIMIT": "3/h",
    }
    other = subprocess.run(  # noqa: S603 (fixed command line)
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert other.stdout.strip() == "[200, 200]", other.stderr
    client = client_for(api_key.secret)

    # when
    third, fourth = client.get(URL), client.get(URL)

    # then
    assert third.status_code == 200
    assert third["RateLimit-Remaining"] == "0"
    assert fourth.status_code == 429
