"""factory_boy factories. Rows are written through the services, never around them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from contacts.services import EventInput, events_upsert
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.services import workspace_create


class WorkspaceFactory(factory.django.DjangoModelFactory[Workspace]):
    class Meta:
        model = Workspace

    id = factory.Sequence(lambda n: f"ws_{n}")
    name: factory.LazyAttribute[Any, str] = factory.LazyAttribute(lambda o: f"Workspace {o.id}")

    @classmethod
    def _create(cls, model_class: type[Workspace], *args: Any, **kwargs: Any) -> Workspace:
        return workspace_create(workspace_id=kwargs["id"], name=kwargs["name"])


class EventInputFactory(factory.Factory[EventInput]):
    """A validated incoming event, as the API hands it to ``events_upsert``."""

    class Meta:
        model = EventInput

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    event_name = "order.completed"
    external_id = factory.Sequence(lambda n: f"order_{n}")
    occurred_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    properties = factory.LazyFunction(lambda: {"currency": "USD"})
    goal = factory.LazyFunction(lambda: {"goal_type": "purchase", "goal_value": Decimal("10.00")})


def events_create(workspace: Workspace, inputs: list[EventInput]) -> None:
    """Store events through the service, in API-sized batches."""
    for start in range(0, len(inputs), 50):
        events_upsert(workspace_id=workspace.id, events=inputs[start : start + 50])
