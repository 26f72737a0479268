"""``manage.py demo_setup``: what ``make run`` does after migrating.

Seeds the ``demo`` workspace if it has no contacts, lets the apps above give it what they own
(the ``demo_workspace_ready`` signal: the three template segments built, an RFM model computed),
ensures a superuser ``admin`` who owns it and an API key for it, and prints how to log in and
send a first event. The admin password and the key's secret (only its hash is in the database) are
kept in ``.demo-credentials`` so that re-runs print the same ones; if that file is lost, a new
password and key are issued.
For local development only: it refuses to run with DEBUG off unless told ``--force``.
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from contacts.models import Contact
from contacts.signals import demo_workspace_ready
from events_platform.workspaces.models import ApiKey, Workspace, WorkspaceMembership, hash_secret
from events_platform.workspaces.services import api_key_create, workspace_member_add

from .seed_demo import output_stream

DEMO_WORKSPACE = "demo"
ADMIN_USERNAME = "admin"
API_KEY_NAME = "demo"


def credentials_read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def credentials_write(path: Path, values: dict[str, str]) -> None:
    text = "# Written by `manage.py demo_setup` for local development. Keep it out of git.\n" + "".join(
        f"{name}={value}\n" for name, value in values.items()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


class Command(BaseCommand):
    help = "Seed the demo workspace if empty, ensure the admin login and a demo API key, and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--credentials-file", type=Path, default=Path(settings.BASE_DIR) / ".demo-credentials")
        parser.add_argument("--base-url", default="http://localhost:8000")
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (never in production).")
        parser.add_argument("--contacts", type=int, default=500, help="Size of the seed, if it happens.")
        parser.add_argument("--events", type=int, default=5000, help="Size of the seed, if it happens.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("demo_setup creates a superuser with a known password: it runs only with DEBUG=1.")
        path: Path = options["credentials_file"]
        stored = credentials_read(path)

        if not Contact.objects.filter(workspace_id=DEMO_WORKSPACE).exists():
            call_command(
                "seed_demo",
                workspace=DEMO_WORKSPACE,
                contacts=options["contacts"],
                events=options["events"],
                verbosity=options["verbosity"],
                stdout=output_stream(self.stderr),
                stderr=output_stream(self.stderr),
            )
        workspace = Workspace.objects.get(pk=DEMO_WORKSPACE)
        # The layers above give the workspace what they own (built segments, a computed RFM model).
        for _, summary in demo_workspace_ready.send(sender=self.__class__, workspace_id=workspace.id):
            if summary:
                self.stderr.write(str(summary))

        user, password, password_note = self._admin(stored.get("ADMIN_PASSWORD"))
        workspace_member_add(workspace=workspace, user=user, role=WorkspaceMembership.Role.OWNER)
        api_key = stored.get("API_KEY")
        key_note = ""
        if (
            not api_key
            or not ApiKey.objects.active().filter(workspace=workspace, key_hash=hash_secret(api_key)).exists()
        ):
            api_key = api_key_create(workspace=workspace, name=API_KEY_NAME, created_by=user).secret
            key_note = " (new)"
        credentials_write(
            path,
            {
                "ADMIN_USERNAME": ADMIN_USERNAME,
                "ADMIN_PASSWORD": password or stored.get("ADMIN_PASSWORD", ""),
                "API_KEY": api_key,
            },
        )
        self._print(options["base_url"].rstrip("/"), password or password_note, api_key, key_note, path)

    def _admin(self, stored_password: str | None) -> tuple[Any, str | None, str]:
        """The admin user, its password if we know it, and a note when we do not."""
        user_model = get_user_model()
        user = user_model._default_manager.filter(username=ADMIN_USERNAME).first()
        if user is None:
            password = stored_password or secrets.token_urlsafe(12)
            user = user_model._default_manager.create_superuser(
                username=ADMIN_USERNAME, email="admin@example.com", password=password
            )
            return user, password, ""
        if not (user.is_staff and user.is_superuser and user.is_active):
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        if stored_password and user.check_password(stored_password):
            return user, stored_password, ""
        if stored_password:
            # Changed since by hand: keep the user's choice rather than reset it behind their back.
            return user, None, "(changed since; not the one in the credentials file — `manage.py changepassword admin`)"
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        return user, password, ""

    def _print(self, base_url: str, password: str, api_key: str, key_note: str, path: Path) -> None:
        body = (
            '{"workspace_id": "demo", "email": "customer@example.com", "event_name": "order.completed", '
            '"external_id": "order-1001", "goal_type": "purchase", "goal_value": 49.90, '
            '"properties": {"currency": "EUR"}}'
        )
        curl = (
            f"curl -sS -X POST {base_url}/api/customEvents.upsert \\\n"
            f'  -H "Authorization: Bearer {api_key}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d {shlex.quote(body)}"
        )
        rule = "=" * 72
        self.stdout.write(
            "\n".join(
                [
                    rule,
                    f"  events_platform is ready on {base_url}",
                    f"  Admin:    {base_url}/admin/   user {ADMIN_USERNAME}   password {password}",
                    f"  API docs: {base_url}/api/docs/",
                    f"  API key{key_note} for workspace '{DEMO_WORKSPACE}': {api_key}",
                    f"  (saved in {path})",
                    rule,
                    "Send an event:",
                    "",
                    curl,
                    "",
                ]
            )
        )
