"""A local webhook receiver for development: prints each delivery and checks its signature."""

from __future__ import annotations

import hmac
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks import signing
from webhooks.receiver import Received, Receiver


def signature_ok(secret: str, request: Received) -> bool:
    """Whether any v1 signature of the request was made with ``secret``."""
    expected = signing.sign(
        secret=secret,
        message_id=request.headers.get("webhook-id", ""),
        timestamp=int(request.headers.get("webhook-timestamp") or 0),
        body=request.body,
    )
    return any(hmac.compare_digest(expected, given) for given in request.headers.get("webhook-signature", "").split())


class Command(BaseCommand):
    help = (
        "Listen on 127.0.0.1:PORT for webhook deliveries and print them (and whether the signature checks out "
        "with --secret). Subscribe http://127.0.0.1:PORT/hooks; WEBHOOK_ALLOWED_NETWORKS must allow 127.0.0.0/8 "
        "(make run does)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9000)
        parser.add_argument("--secret", default="", help="the subscription's whsec_... secret")
        parser.add_argument("--status", type=int, default=200, help="HTTP status to answer with")

    def handle(self, *args: Any, port: int, secret: str, status: int, **options: Any) -> None:
        from webhooks.receiver import Answer

        def answer(request: Received) -> Answer:
            verdict = ""
            if secret:
                verdict = " signature ok" if signature_ok(secret, request) else " SIGNATURE MISMATCH"
            self.stdout.write(
                f"{time.strftime('%H:%M:%S')} {request.headers.get('webhook-id')}{verdict}\n"
                f"{request.body.decode(errors='replace')}\n"
            )
            return Answer(status=status)

        with Receiver(answer, port=port) as receiver:
            self.stderr.write(f"listening on {receiver.url} (Ctrl-C to stop)")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return
