"""Webhooks migration 0002: the outbox, deliveries and attempts lose the indexes no read uses."""

from __future__ import annotations

import pytest
from django.db import connection

from events_platform.indexes import own_indexes
from events_platform.testing import migrate_to, migrate_to_latest
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookOutbox

BEFORE = [("webhooks", "0001_create_webhooks")]
# (table, column) -> how many own indexes 0001 gave it: the FK index, and on PostgreSQL the _like
# pattern index of a text key (SQLite has no pattern indexes; a unique field's is its own).
POSTGRESQL = connection.vendor == "postgresql"
OWN = {
    (WebhookOutbox._meta.db_table, "workspace_id"): 2 if POSTGRESQL else 1,
    (WebhookDelivery._meta.db_table, "workspace_id"): 2 if POSTGRESQL else 1,
    (WebhookDelivery._meta.db_table, "subscription_id"): 1,
    (WebhookDelivery._meta.db_table, "message_id"): 1 if POSTGRESQL else 0,
    (WebhookAttempt._meta.db_table, "delivery_id"): 1,
}


def _counts() -> dict[tuple[str, str], int]:
    return {key: len(own_indexes(connection, *key)) for key in OWN}


@pytest.mark.django_db(transaction=True)
def test_the_webhook_tables_lose_their_own_indexes_and_get_them_back_backwards() -> None:
    try:
        # given the tables as 0001 made them
        migrate_to(BEFORE)
        assert _counts() == OWN
        # when
        migrate_to_latest()
        # then
        assert _counts() == dict.fromkeys(OWN, 0)
        # and backwards
        migrate_to(BEFORE)
        assert _counts() == OWN
    finally:
        migrate_to_latest()
    assert _counts() == dict.fromkeys(OWN, 0)
