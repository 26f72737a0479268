"""The webhooks figure's receiver, in a process of its own (so it never holds the benchmark
client's GIL): ``python -m bench.webhook_receiver LOG``. Prints its port, then appends one line
per delivery to LOG: ``<arrival time> <type> <external_id or ->``."""

from __future__ import annotations

import json
import sys
import threading
import time

from webhooks.receiver import Answer, Received, Receiver


def main(log_path: str) -> None:
    lock = threading.Lock()
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    def record(request: Received) -> Answer:
        try:
            body = json.loads(request.body)
            event = (body.get("data") or {}).get("custom_event") or {}
            line = f"{request.at:.6f} {body.get('type', '-')} {event.get('external_id') or '-'}\n"
        except ValueError:
            line = f"{request.at:.6f} - -\n"
        with lock:
            log.write(line)
        return Answer()

    receiver = Receiver(record).start()
    print(receiver.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main(sys.argv[1])
