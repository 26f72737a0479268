"""The request boundary through a real gunicorn (sync workers, DEBUG off), as production serves it:
a chunked body is read whole, an oversized one is a JSON 413, bad input a JSON 400."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from conftest import IssuedApiKey
from contacts.models import CustomEvent
from events_platform.testing import BASE_DIR, _database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: None) -> Iterator[int]:
    """gunicorn on a free port of 127.0.0.1, on the test database (one for the module); its port."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (the server process must share the test database)")
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "gunicorn-boundary-test-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": _database_url(),
        "API_RATE_LIMIT": "off",
    }
    env.pop("REDIS_URL", None)
    command = [str(BASE_DIR / ".venv/bin/gunicorn"), "events_platform.wsgi", "--config", "gunicorn.conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", "/dev/null"]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"gunicorn exited: {process.stderr.read().decode() if process.stderr else ''}")
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(port: int, path: str, body: bytes, secret: str, *, chunked: bool) -> tuple[int, str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    if chunked:
        pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        conn.request("POST", path, body=iter(pieces), headers=headers, encode_chunked=True)
    else:
        conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, response.getheader("Content-Type") or "", json.loads(payload)


def event(external_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "workspace_id": "acme",
        "email": "chunk@example.com",
        "event_name": "order.completed",
        "external_id": external_id,
        **extra,
    }


def test_a_chunked_body_is_read_whole(gunicorn: int, api_key: IssuedApiKey) -> None:
    # when
    status, content_type, body = post(
        gunicorn, "/api/customEvents.upsert", json.dumps(event("c1")).encode(), api_key.secret, chunked=True
    )
    # then
    assert (status, content_type) == (200, "application/json"), body
    assert body["operation"] == "created"
    assert CustomEvent.objects.filter(external_id="c1").exists()


def test_a_chunked_body_with_bad_input_is_refused_at_its_field(gunicorn: int, api_key: IssuedApiKey) -> None:
    raw = json.dumps(event("c2", properties={"note": "\ud800"})).encode()
    status, content_type, body = post(gunicorn, "/api/customEvents.upsert", raw, api_key.secret, chunked=True)
    assert (status, content_type) == (400, "application/json")
    assert "properties.note" in body["details"]
    assert not CustomEvent.objects.exists()


def test_a_body_over_the_limit_is_a_json_413_before_it_is_read(gunicorn: int, api_key: IssuedApiKey) -> None:
    """Only the headers are sent: the answer comes before any of the 11 MiB would be read."""
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
    conn.putrequest("POST", "/api/customEvents.upsert")
    conn.putheader("Authorization", f"Bearer {api_key.secret}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(11 * 1024 * 1024))
    conn.endheaders()
    response = conn.getresponse()
    body = json.loads(response.read())
    assert (response.status, response.getheader("Content-Type")) == (413, "application/json")
    assert "at most 10 MiB (10485760 bytes)" in body["error"]


def test_a_chunked_body_over_the_limit_is_a_json_413(gunicorn: int, api_key: IssuedApiKey) -> None:
    raw = json.dumps(event("c3", properties={"pad": "x" * (10 * 1024 * 1024)})).encode()
    status, content_type, body = post(gunicorn, "/api/customEvents.upsert", raw, api_key.secret, chunked=True)
    assert (status, content_type) == (413, "application/json")
    assert "over 10485760 bytes" in body["error"]
    assert not CustomEvent.objects.exists()
