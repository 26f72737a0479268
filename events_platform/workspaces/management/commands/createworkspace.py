"""``manage.py createworkspace ID --name NAME [--timezone TZ] [--owner USERNAME]``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from events_platform.workspaces.services import workspace_create


def validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Create a workspace; the --owner user becomes its owner member."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace_id", help="Slug used in every API call: a-z, 0-9 and _ (max 32).")
        parser.add_argument("--name", required=True)
        parser.add_argument("--timezone", default="UTC", help="IANA timezone (default UTC).")
        parser.add_argument("--owner", help="Username of an existing user to make owner.")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        if options["owner"]:
            user_model = get_user_model()
            try:
                owner = user_model._default_manager.get_by_natural_key(options["owner"])
            except user_model.DoesNotExist as exc:
                raise CommandError(f"No user named '{options['owner']}'.") from exc
        try:
            workspace = workspace_create(
                workspace_id=options["workspace_id"],
                name=options["name"],
                timezone_name=options["timezone"],
                owner=owner,
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        except IntegrityError as exc:  # created concurrently between the check and the insert
            raise CommandError(f"Workspace '{options['workspace_id']}' already exists.") from exc
        owned = f", owner {options['owner']}" if owner else ""
        self.stdout.write(f"Created workspace {workspace.id} ({workspace.name}, {workspace.timezone}{owned}).")
