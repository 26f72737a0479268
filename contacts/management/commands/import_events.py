"""``manage.py import_events FILE --workspace ID [--format jsonl|csv]``.

Each line is validated by the API's own ``EventInputSerializer`` and valid events are written
50 at a time through ``events_upsert`` (one transaction per batch), so an import behaves
exactly like the same events sent to ``customEvents.import``. Invalid lines are skipped and
listed at the end with their line number and reason. The file is streamed: memory stays
constant whatever its size (only the first rejections are kept for the report).

JSON Lines: one event object per line, the customEvents.upsert body without workspace_id.
CSV: a header row naming the columns (email, event_name, external_id, occurred_at, goal_type,
goal_name, goal_value, source, integration_id, properties as a JSON object, deleted_at); an
empty cell means the field was not sent.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from rest_framework.settings import api_settings
from tqdm import tqdm

from contacts.api.serializers import EventInputSerializer
from contacts.models import CustomEvent
from contacts.services import EventInput, events_upsert
from events_platform.workspaces.models import Workspace

from .seed_demo import output_stream

BATCH_SIZE = 50
MAX_REPORTED = 100
CSV_COLUMNS = (
    "email",
    "event_name",
    "external_id",
    "occurred_at",
    "goal_type",
    "goal_name",
    "goal_value",
    "source",
    "integration_id",
    "properties",
    "deleted_at",
)
OPERATIONS = ("created", "updated", "unchanged", "deleted", "restored")


class LineRejected(Exception):
    """A line that cannot become an event; the message says which field and why."""


@dataclass(frozen=True)
class Line:
    number: int
    data: Any


def _strict_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and the API's parser) does not.
    raise ValueError(f"{name} is not valid JSON")


def _json_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_strict_constant)


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)


def _decoded_lines(raw: BinaryIO, bar: tqdm) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each line, or None as text for a line that is not UTF-8."""
    for number, chunk in enumerate(raw, start=1):
        bar.update(len(chunk))
        try:
            # utf-8-sig drops the byte-order mark that spreadsheet exports put on line 1.
            yield number, chunk.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            yield number, None


def _jsonl_lines(raw: BinaryIO, bar: tqdm) -> Iterator[Line | tuple[int, str]]:
    for number, text in _decoded_lines(raw, bar):
        if text is None:
            yield number, "Not UTF-8 text."
            continue
        if not text.strip():
            continue
        try:
            yield Line(number, _json_loads(text))
        except ValueError as exc:
            yield number, f"Not valid JSON: {_json_error(exc)}."


def _csv_lines(raw: BinaryIO, bar: tqdm, warn: Any) -> Iterator[Line | tuple[int, str]]:
    decoded = _decoded_lines(raw, bar)
    # Line numbers of the text the csv reader consumes; a quoted cell may span several lines.
    current = {"number": 0}
    not_utf8: set[int] = set()

    def texts() -> Iterator[str]:
        for number, text in decoded:
            current["number"] = number
            if text is None:
                not_utf8.add(number)
            yield text or "\n"

    reader = csv.reader(texts())
    header = next(reader, None)
    if header is None:
        return
    header = [name.strip() for name in header]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        warn(f"Ignoring unknown CSV columns: {', '.join(unknown)}.")
    start = current["number"] + 1
    for row in reader:
        number, start = start, current["number"] + 1
        if not_utf8.intersection(range(number, start)):
            yield number, "Not UTF-8 text."
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield number, f"Has {len(row)} cells, the header has {len(header)}."
            continue
        data: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=True):
            if name not in CSV_COLUMNS or cell == "":
                continue
            if name == "properties":
                try:
                    data[name] = _json_loads(cell)
                except ValueError as exc:
                    yield number, f"properties: Not valid JSON: {_json_error(exc)}."
                    break
            else:
                data[name] = cell
        else:
            yield Line(number, data)


def _errors_text(errors: Any, prefix: str = "") -> str:
    if isinstance(errors, dict):
        parts = []
        for field, value in errors.items():
            name = "" if field == api_settings.NON_FIELD_ERRORS_KEY else f"{prefix}{field}"
            parts.append(_errors_text(value, f"{name}." if name else ""))
        return "; ".join(parts)
    if isinstance(errors, list):
        texts = [_errors_text(e, prefix) if isinstance(e, dict | list) else str(e) for e in errors]
        label = prefix.rstrip(".")
        return f"{label}: {' '.join(texts)}" if label else " ".join(texts)
    return str(errors)


class Command(BaseCommand):
    help = "Import custom events from a JSON Lines or CSV file, validated like the API, 50 per transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--workspace", required=True, help="Workspace id to import into.")
        parser.add_argument(
            "--format", choices=["jsonl", "csv"], help="Default: from the extension (.csv, else JSON Lines)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(pk=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"Workspace '{options['workspace']}' does not exist.")
        path = options["file"]
        file_format = options["format"] or ("csv" if path.lower().endswith(".csv") else "jsonl")
        self.workspace_id = workspace.id
        self.counts: Counter[str] = Counter()
        self.rejected: list[tuple[int, str]] = []
        try:
            size = os.path.getsize(path)
            raw = open(path, "rb")  # noqa: SIM115 (closed below; open errors must become CommandError)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        disable = True if options["verbosity"] == 0 else None
        with (
            raw,
            tqdm(
                total=size,
                desc=os.path.basename(path),
                unit="B",
                unit_scale=True,
                file=output_stream(self.stderr),
                disable=disable,
            ) as bar,
        ):
            try:
                if file_format == "csv":
                    lines = _csv_lines(raw, bar, self.stderr.write)
                else:
                    lines = _jsonl_lines(raw, bar)
                self._import(lines)
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        self._report()

    def _import(self, lines: Iterator[Line | tuple[int, str]]) -> None:
        batch: list[tuple[int, EventInput]] = []
        for line in lines:
            if not isinstance(line, Line):
                self._reject(*line)
                continue
            try:
                batch.append((line.number, self._validate(line.data)))
            except LineRejected as exc:
                self._reject(line.number, str(exc))
                continue
            if len(batch) == BATCH_SIZE:
                self._write(batch)
                batch = []
        if batch:
            self._write(batch)

    def _validate(self, data: Any) -> EventInput:
        if isinstance(data, dict) and data.get("workspace_id") not in (None, self.workspace_id):
            raise LineRejected(f"workspace_id: Is '{data['workspace_id']}', the import is into '{self.workspace_id}'.")
        serializer = EventInputSerializer(data=data, default_source=CustomEvent.Source.IMPORT)
        if not serializer.is_valid():
            raise LineRejected(_errors_text(serializer.errors))
        return serializer.to_event_input(serializer.validated_data)

    def _write(self, batch: list[tuple[int, EventInput]]) -> None:
        try:
            self._count(events_upsert(workspace_id=self.workspace_id, events=[e for _, e in batch]))
            return
        except (DatabaseError, ValidationError):
            pass
        # The database refused the batch, so none of it was written (one transaction). Write its
        # events one by one to find the culprit(s); the others still go in, each all or nothing.
        for number, incoming in batch:
            try:
                self._count(events_upsert(workspace_id=self.workspace_id, events=[incoming]))
            except (DatabaseError, ValidationError) as exc:
                reason = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc).strip()
                self._reject(number, f"Refused by the database: {reason.splitlines()[0] if reason else exc!r}")

    def _count(self, results: list[Any]) -> None:
        for result in results:
            self.counts[result.operation] += 1

    def _reject(self, number: int, reason: str) -> None:
        self.counts["rejected"] += 1
        if len(self.rejected) < MAX_REPORTED:
            self.rejected.append((number, reason))

    def _report(self) -> None:
        summary = ", ".join(f"{self.counts[name]} {name}" for name in (*OPERATIONS, "rejected"))
        self.stdout.write(f"Imported into {self.workspace_id}: {summary}.")
        if self.rejected:
            self.stdout.write("Rejected lines:")
            for number, reason in self.rejected:
                self.stdout.write(f"  line {number}: {reason}")
            more = self.counts["rejected"] - len(self.rejected)
            if more:
                self.stdout.write(f"  ... and {more} more rejected lines.")
