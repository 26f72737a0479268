"""``manage.py createapikey WORKSPACE_ID --name NAME``: the secret, alone, on stdout.

Nothing else goes to stdout so that ``KEY=$(manage.py createapikey demo --name ci)`` works;
the note about the key goes to stderr.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events_platform.workspaces.models import API_KEY_NAME_MAX_LENGTH, Workspace
from events_platform.workspaces.services import api_key_create


class Command(BaseCommand):
    help = "Issue an API key for a workspace and print it (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace_id")
        parser.add_argument("--name", required=True, help="What the key is for (shown in the admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name or len(name) > API_KEY_NAME_MAX_LENGTH:
            raise CommandError(f"--name must be 1 to {API_KEY_NAME_MAX_LENGTH} characters.")
        workspace = Workspace.objects.filter(pk=options["workspace_id"]).first()
        if workspace is None:
            raise CommandError(f"Workspace '{options['workspace_id']}' does not exist.")
        issued = api_key_create(workspace=workspace, name=name)
        self.stderr.write(
            f"Issued API key '{issued.api_key.name}' ({issued.api_key.prefix}…) for workspace {workspace.id}. "
            "Copy it now: only its hash is stored."
        )
        self.stdout.write(issued.secret)
