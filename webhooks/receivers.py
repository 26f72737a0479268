"""Where changes below us enter the outbox, inside their own transactions.

Contacts and events arrive through the change recorder registered here
(``contacts.services.register_change_recorder``), segment membership changes through the
segment diff's hook, and RFM group changes through the scoring diff's hook: each runs our
INSERT inside the write's own statement.
No lower layer imports webhooks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contacts.models import Contact
from contacts.services import EventChange, Operation, RecordStatement, register_change_recorder
from rfm.services import register_group_change_hook
from segments.services import register_membership_change_hook

from . import payloads, services

# An upsert's operation -> the type it emits (a restore emits created; see event_type_of).
_EVENT_TYPE_OF_OPERATION = {
    Operation.CREATED: "custom_event.created",
    Operation.RESTORED: "custom_event.created",
    Operation.UPDATED: "custom_event.updated",
    Operation.DELETED: "custom_event.deleted",
}


def event_type_of(change: EventChange) -> str | None:
    """Notifuse's rules: an insert that is already deleted emits deleted; an update of an
    event that stays deleted emits nothing."""
    deleted = change.values.get("deleted_at") is not None
    if change.operation == Operation.CREATED and deleted:
        return "custom_event.deleted"
    if change.operation == Operation.UPDATED and deleted:
        return None
    return _EVENT_TYPE_OF_OPERATION.get(change.operation)


def record_changes(
    *,
    workspace_id: str,
    now: datetime,
    contacts_created: list[Contact],
    contacts_updated: list[Contact],
    contacts_erased: list[Contact],
    events: list[EventChange],
    when: str = "",
    created_rows: str | None = None,
    **kwargs: Any,
) -> RecordStatement | None:
    """The outbox rows of a contacts write, as the statement the write folds into its own.

    When the write's statement holds its created events' rows (``created_rows``), their outbox
    rows are built from them there (``custom_event.created``, or ``.deleted`` for an event
    inserted deleted, as ``event_type_of``), not rendered here: no event's values cross twice."""
    outbox = [
        services.OutboxEvent(f"contact.{kind}", now, payloads.contact_values(contact))
        for kind, contacts in (
            ("created", contacts_created),
            ("updated", contacts_updated),
            ("deleted", contacts_erased),
        )
        for contact in contacts
    ]
    for change in () if created_rows else events:
        event_type = event_type_of(change)
        if event_type is not None:
            outbox.append(services.OutboxEvent(event_type, now, payloads.event_values(change.values)))
    return services.outbox_statement(
        workspace_id=workspace_id, events=outbox, now=now, when=when, created_rows=created_rows
    )


register_change_recorder("webhooks.outbox", record_changes, probe=services.any_enabled_sql)
register_membership_change_hook(services.segment_changes_outbox_sql)
register_group_change_hook(services.rfm_changes_outbox_sql)
