"""Concurrent segments.create of one id on PostgreSQL: one segment, the others a 400 naming id, never a 5xx."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from conftest import IssuedApiKey
from segments.models import Segment
from segments.tests.trees import all_of, goal_leaf

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

THREADS = 12


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL (DATABASE_URL=postgres://...): {connection.vendor} serialises every writer")


def test_concurrent_creates_of_one_id_make_one_segment(api_key: IssuedApiKey) -> None:
    """12 clients create segment ``big`` at once: exactly one 201, every other answer a 400 naming id."""
    # given
    statuses: list[int] = []
    details: list[Any] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    tree = all_of(goal_leaf("sum", "gte", 100))

    def worker(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.secret}")
        try:
            barrier.wait(timeout=30)
            response = client.post(
                "/api/segments.create",
                {"workspace_id": "acme", "id": "big", "name": f"Big {index}", "tree": tree},
                format="json",
            )
            with lock:
                statuses.append(response.status_code)
                details.append(response.json().get("details"))
        except Exception as exc:  # the test client re-raises server errors: record, never lose them
            with lock:
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then
    assert errors == []
    assert sorted(statuses) == [201] + [400] * (THREADS - 1)
    assert all(list(d) == ["id"] for d in details if d)
    assert Segment.objects.filter(workspace_id="acme", slug="big").count() == 1
    assert Segment.objects.get(slug="big").status == Segment.Status.ACTIVE
