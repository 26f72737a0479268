"""The development receiver's signature check agrees with the standardwebhooks package."""

from __future__ import annotations

import time

from webhooks import signing
from webhooks.management.commands.webhook_receiver import signature_ok
from webhooks.receiver import Received


def test_the_receiver_command_checks_signatures() -> None:
    """A body signed with the secret passes; another secret or a changed body does not."""
    secret = signing.secret_generate()
    body = b'{"type":"contact.created"}'
    headers = signing.headers(secrets_=[secret], message_id="msg_1", timestamp=int(time.time()), body=body)
    request = Received(path="/hooks", headers=headers, body=body, at=time.time(), peer="127.0.0.1")
    assert signature_ok(secret, request)
    assert not signature_ok(signing.secret_generate(), request)
    tampered = Received(path="/hooks", headers=headers, body=body + b" ", at=time.time(), peer="127.0.0.1")
    assert not signature_ok(secret, tampered)
