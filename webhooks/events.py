"""The event types webhooks emit: the one list to extend when a new kind of change leaves the system.

Each type names its *subject* (what its ``data`` holds, and which subscription filters apply):
``custom_event`` data is ``{"custom_event": <customEvents.get's event>}`` and passes
``custom_event_filters``; ``contact`` data is ``{"contact": <contacts.get's contact>}``;
``segment`` data is ``{"email", "contact_id", "segment_id", "segment_name"}`` and passes
``segment_ids``; ``rfm`` data is ``{"email", "contact_id", "model", "from_group", "to_group", "r",
"f", "m"}``. A new type (RFM's ``rfm.group_changed``) is one more line here, plus the
producer that records it (``services.outbox_record``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    name: str
    subject: str
    description: str


EVENT_TYPES: tuple[EventType, ...] = (
    EventType("custom_event.created", "custom_event", "A live event was inserted, or a deleted one restored."),
    EventType("custom_event.updated", "custom_event", "A live event changed (a newer occurred_at)."),
    EventType("custom_event.deleted", "custom_event", "An event was soft-deleted, or inserted already deleted."),
    EventType("contact.created", "contact", "A contact was created (by contacts.upsert or an event's email)."),
    EventType("contact.updated", "contact", "A contact's fields changed."),
    EventType("contact.deleted", "contact", "A contact was erased (data: the contact as it was)."),
    EventType("segment.joined", "segment", "A contact entered a segment."),
    EventType("segment.left", "segment", "A contact left a segment."),
    EventType("rfm.group_changed", "rfm", "A contact moved to another RFM group (full run or after an event)."),
)

BY_NAME = {t.name: t for t in EVENT_TYPES}
EVENT_TYPE_NAMES = tuple(t.name for t in EVENT_TYPES)


def subject_of(event_type: str) -> str:
    return BY_NAME[event_type].subject
