"""Schemathesis hooks for `.ci/fuzz`: point the generated requests at the test workspace's data.

A schema says which values are well formed, not which exist. Left alone, the fuzz sends a random
`workspace_id` (the key's workspace is one of billions of valid ids: 403), random segment, model,
subscription and contact references (404) and webhook URLs no network rule lets through (400),
so most operations are answered by a guard and never exercised. Parameter overrides in
schemathesis.toml do not reach every request either (a `oneOf` body such as contacts.upsert's,
the coverage phase's probes).

So before the schema is used (``before_load_schema``), the fuzz's copy of it (the served schema
is unchanged) says, for each operation's request:

- `workspace_id`, wherever it is (query, body, each `oneOf` alternative): exactly the test
  workspace (`FUZZ_WORKSPACE`);
- each reference a request names: one of the references that exist in that workspace, read from
  the API itself (template segments, the RFM model, a webhook subscription and its delivery, a
  contact with an external id and an event), created here when missing;
- a webhook URL: one the fuzz server's `WEBHOOK_ALLOWED_NETWORKS` lets through (nothing listens).

Negative cases still mutate these values (another workspace: 403, an unknown reference: 404), so
every check keeps its meaning. Deleting operations get references of their own, made again after
each successful delete (``after_call``), so the others' references keep existing.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import requests
import schemathesis

BASE_URL = os.environ.get("FUZZ_BASE_URL", "")
WORKSPACE = os.environ.get("FUZZ_WORKSPACE", "demo")
API_KEY = os.environ.get("FUZZ_API_KEY", "")
WEBHOOK_URL = "http://127.0.0.1:9/fuzz"  # the discard port: nothing answers, deliveries fail fast

# Made by these hooks (their names say so), and made again after a fuzzed delete.
REF_EMAIL = "fuzz-ref@example.com"
REF_EXTERNAL_ID = "fuzz-ref-1"
REF_EVENT = ("fuzz.ref", "fuzz-ref-event-1")
DISPOSABLE_EMAIL = "fuzz-disposable@example.com"
DISPOSABLE_SEGMENT = "fuzz_disposable"
DISPOSABLE_MODEL = "fuzz_disposable"
EVERYONE = {"field_name": "email", "field_type": "string", "operator": "contains", "string_values": ["@"]}
SEGMENT_TREE = {"kind": "leaf", "leaf": {"source": "contacts", "contact": {"filters": [EVERYONE]}}}
# A purchase total of at least 100 in the last 90 days (the console's goal condition).
GOAL = dict(goal_type="purchase", aggregate_operator="sum", operator="gte", value=100)
SPENT_100 = {
    "source": "custom_events_goals",
    "custom_events_goal": {**GOAL, "timeframe_operator": "in_the_last_days", "timeframe_values": ["90"]},
}
# Valid rule trees (a random tree is nearly always refused as a whole: see schemathesis.toml).
TREES: list[Any] = [
    SEGMENT_TREE,
    {"kind": "leaf", "leaf": SPENT_100},
    {"kind": "branch", "branch": {"operator": "or", "leaves": [SEGMENT_TREE, {"kind": "leaf", "leaf": SPENT_100}]}},
]
DISPOSABLE_SUBSCRIPTIONS = 3  # ids are made by the server: a deleted one cannot be made again


def _call(method: str, operation: str, data: dict[str, Any]) -> tuple[int, Any]:
    """One API request as the test workspace's key: (status, JSON answer)."""
    payload = {"workspace_id": WORKSPACE, **data}
    response = requests.request(
        method,
        f"{BASE_URL}/api/{operation}",
        params=payload if method == "GET" else None,
        json=payload if method != "GET" else None,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    return response.status_code, response.json()


def _ensure(method: str, operation: str, data: dict[str, Any]) -> Any:
    status, answer = _call(method, operation, data)
    if status >= 300:
        raise RuntimeError(f"fuzz setup: {operation} answered {status}: {answer}")
    return answer


def _make_contact(email: str) -> None:
    contact = {"email": email, "first_name": "Fuzz", "phone": "+33 1 23", "custom_number_1": 1}
    if email == REF_EMAIL:
        contact["external_id"] = REF_EXTERNAL_ID
    _ensure("POST", "contacts.upsert", {"contact": contact})


def _make_segment(slug: str) -> None:
    if _call("GET", "segments.get", {"id": slug})[0] == 404:
        _ensure("POST", "segments.create", {"id": slug, "name": slug, "color": "blue", "tree": SEGMENT_TREE})


def _make_model(slug: str) -> None:
    if _call("GET", "rfmModels.get", {"id": slug})[0] == 404:
        _ensure("POST", "rfmModels.create", {"id": slug, "name": slug})


def _make_subscription() -> str:
    answer = _ensure(
        "POST",
        "webhookSubscriptions.create",
        {"name": "fuzz", "url": WEBHOOK_URL, "event_types": ["contact.created", "custom_event.created"]},
    )
    subscription_id: str = answer["subscription"]["id"]
    return subscription_id


def references() -> dict[str, list[Any]]:
    """What exists in the test workspace, by kind, made first where missing."""
    _make_contact(REF_EMAIL)
    _make_contact(DISPOSABLE_EMAIL)
    event_name, external_id = REF_EVENT
    _ensure(
        "POST",
        "customEvents.upsert",
        {
            "email": REF_EMAIL,
            "event_name": event_name,
            "external_id": external_id,
            "goal_type": "purchase",
            "goal_value": 10,
        },
    )
    _make_segment(DISPOSABLE_SEGMENT)
    _make_model(DISPOSABLE_MODEL)
    segments = [s["id"] for s in _ensure("GET", "segments.list", {})["segments"] if s["id"] != DISPOSABLE_SEGMENT]
    models = [m["id"] for m in _ensure("GET", "rfmModels.list", {})["rfm_models"] if m["id"] != DISPOSABLE_MODEL]
    subscription = _make_subscription()
    disposable_subscriptions = [_make_subscription() for _ in range(DISPOSABLE_SUBSCRIPTIONS)]
    delivery = _ensure("POST", "webhookSubscriptions.test", {"id": subscription})["delivery_id"]
    emails = [c["email"] for c in _ensure("GET", "contacts.list", {"limit": 3})["contacts"]]
    return {
        "email": list(dict.fromkeys([REF_EMAIL, *(e for e in emails if e != DISPOSABLE_EMAIL)])),
        "external_id": [REF_EXTERNAL_ID],
        "event_name": [event_name],
        "event_external_id": [external_id],
        "segment": segments,
        "model": models,
        "subscription": [subscription],
        "delivery": [delivery],
        "disposable_email": [DISPOSABLE_EMAIL],
        "disposable_segment": [DISPOSABLE_SEGMENT],
        "disposable_model": [DISPOSABLE_MODEL],
        "disposable_subscription": disposable_subscriptions,
        "webhook_url": [WEBHOOK_URL],
        "tree": TREES,
        # rfm.transitions' from/to: a date or an instant (any other text is a 400 naming it).
        "since": ["2026-01-01", "2026-06-01T00:00:00Z"],
        "until": ["2026-11-30", "2026-11-30T23:59:59Z"],
    }


# Which request value names which kind of reference, per operation: {operation: {name: kind}}.
SEGMENT_REF = {"id": "segment", "segment_id": "segment"}
SUBSCRIPTION_REF = {"id": "subscription"}
PINNED: dict[str, dict[str, str]] = {
    "contacts.get": {"email": "email"},
    "contacts.getByEmail": {"email": "email"},
    "contacts.getByExternalID": {"external_id": "external_id"},
    "contacts.delete": {"email": "disposable_email"},
    "timeline.list": {"email": "email"},
    "customEvents.get": {"event_name": "event_name", "external_id": "event_external_id"},
    "segments.get": {"id": "segment"},
    "segments.export": {"id": "segment"},
    "segments.contacts": SEGMENT_REF,
    "segments.rebuild": SEGMENT_REF,
    "segments.update": {"id": "segment", "tree": "tree"},
    "segments.create": {"tree": "tree"},
    "segments.preview": {"tree": "tree"},
    "segments.explain": {"segment_id": "segment", "email": "email"},
    "segments.delete": {"id": "disposable_segment"},
    "rfmModels.get": {"id": "model"},
    "rfmModels.update": {"id": "model"},
    "rfmModels.recompute": {"id": "model"},
    "rfmModels.delete": {"id": "disposable_model"},
    "rfm.contacts": {"model": "model"},
    "rfm.distribution": {"model": "model"},
    "rfm.transitions": {"model": "model", "from": "since", "to": "until"},
    "webhookSubscriptions.get": SUBSCRIPTION_REF,
    "webhookSubscriptions.update": {**SUBSCRIPTION_REF, "url": "webhook_url"},
    "webhookSubscriptions.create": {"url": "webhook_url"},
    "webhookSubscriptions.toggle": SUBSCRIPTION_REF,
    "webhookSubscriptions.test": SUBSCRIPTION_REF,
    "webhookSubscriptions.regenerateSecret": SUBSCRIPTION_REF,
    "webhookSubscriptions.delete": {"id": "disposable_subscription"},
    "webhookSubscriptions.deliveries": {"subscription_id": "subscription"},
    "webhookSubscriptions.attempts": {"delivery_id": "delivery"},
    "webhookSubscriptions.replay": {"delivery_id": "delivery", "subscription_id": "subscription"},
}


def _one_of(values: list[Any]) -> dict[str, Any]:
    if all(isinstance(value, str) for value in values):
        return {"type": "string", "enum": values}
    return {"enum": values}


def _pin_object(schema: dict[str, Any], values: dict[str, list[Any]]) -> None:
    """Pin the named properties of an object schema (nullable ones stay nullable)."""
    properties = schema.get("properties", {})
    for name, allowed in values.items():
        if name in properties and allowed:
            if properties[name].get("nullable", False):  # OpenAPI 3.0: null must be in the enum too
                properties[name] = {**_one_of(allowed), "enum": [*allowed, None], "nullable": True}
            else:
                properties[name] = _one_of(allowed)


def _resolve(raw_schema: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A request body schema with its top-level $ref (and its oneOf alternatives') copied inline."""
    components = raw_schema["components"]["schemas"]
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    schema = copy.deepcopy(schema)
    if "oneOf" in schema:
        schema["oneOf"] = [_resolve(raw_schema, alternative) for alternative in schema["oneOf"]]
    return schema


def pin(raw_schema: dict[str, Any], refs: dict[str, list[Any]]) -> None:
    """Rewrite the fuzz's copy of the schema: workspace_id and each operation's references pinned."""
    for item in raw_schema["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            values: dict[str, list[Any]] = {"workspace_id": [WORKSPACE]}
            values |= {name: refs[kind] for name, kind in PINNED.get(operation["operationId"], {}).items()}
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter["name"] in values and values[parameter["name"]]:
                    parameter["schema"] = _one_of(values[parameter["name"]])
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                body = _resolve(raw_schema, media["schema"])
                for alternative in body.get("oneOf", [body]):
                    _pin_object(alternative, values)
                media["schema"] = body


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    pin(raw_schema, references())


# A delete that succeeded: make its reference again, so it exists for the next case.
REMAKE = {
    "contacts.delete": lambda: _make_contact(DISPOSABLE_EMAIL),
    "segments.delete": lambda: _make_segment(DISPOSABLE_SEGMENT),
    "rfmModels.delete": lambda: _make_model(DISPOSABLE_MODEL),
}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    operation_id = case.operation.path.removeprefix("/api/")
    if operation_id in REMAKE and 200 <= response.status_code < 300:
        REMAKE[operation_id]()
