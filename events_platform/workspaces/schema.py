"""OpenAPI: the API-key authentication (drf-spectacular extension), operations described by their
handlers' docstrings, and the request rules every operation shares (a post-processing hook)."""

import inspect
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc


class DocstringAutoSchema(AutoSchema):
    """An operation's summary is the first paragraph of its handler's docstring, its description the
    rest (without a rest, the docstring the view class itself declares, never one it inherits, such
    as ``WorkspaceAPIView``'s); ``extend_schema(summary=..., description=...)`` still overrides them."""

    def _docstring(self) -> tuple[str, str]:
        handler = getattr(self.view, self.method.lower(), None)
        summary, _, description = (inspect.getdoc(handler) or "").partition("\n\n")
        return " ".join(summary.split()), " ".join(description.split())

    def get_summary(self) -> str | None:
        return self._docstring()[0] or None

    def get_description(self, path: str = "", method: str = "") -> str:
        # drf-spectacular calls it without arguments; DRF's inspector, which it narrows, takes these.
        # A class's own __doc__ is None without a docstring (never inherited); get_doc would inherit.
        own = self.view.__class__.__doc__
        return self._docstring()[1] or (get_doc(self.view.__class__) if own else "")


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "events_platform.workspaces.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace API key: `Authorization: Bearer ep_...`.",
        }


# What a workspace id is (Workspace.id): the schema says it wherever one is sent.
WORKSPACE_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": "^[a-z0-9_]+$"}
# Operations that read no workspace (a fixed list).
NO_WORKSPACE = {"webhookSubscriptions.eventTypes"}
JSON = "application/json"
# Text fields refuse NUL (no text column holds it), and a required one refuses text that is only
# whitespace (it is trimmed, then blank): said as patterns where the field has none of its own.
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def _text_rules(schema: dict[str, Any]) -> None:
    if schema.get("type") != "string" or "pattern" in schema or "enum" in schema or "format" in schema:
        return
    schema["pattern"] = NOT_BLANK if schema.get("minLength", 0) >= 1 else NO_NUL


def state_request_rules(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: the request rules every operation shares.

    - Bodies are JSON: the parser reads any Content-Type as JSON (curl's ``-d`` sends a form type),
      but only JSON is described, so a client or fuzzer sends JSON.
    - ``workspace_id`` has the workspace id's pattern and length, and every operation but
      ``NO_WORKSPACE`` requires it (in the body of a POST, the query of a GET).
    - Text sent (query parameters, request bodies' fields) has no NUL, and required text is not
      only whitespace, unless the field states a pattern, an enum or a format of its own.
    """
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            body = operation.get("requestBody")
            if body and body.get("content"):
                content = body["content"]
                body["content"] = {JSON: content.get(JSON) or next(iter(content.values()))}
            if method != "get" or operation.get("operationId") in NO_WORKSPACE:
                continue
            parameters = operation.setdefault("parameters", [])
            found = [p for p in parameters if p.get("in") == "query" and p.get("name") == "workspace_id"]
            if not found:
                found = [{"in": "query", "name": "workspace_id", "schema": {}}]
                parameters.insert(0, found[0])
            found[0]["required"] = True
            found[0]["schema"] = dict(WORKSPACE_ID_SCHEMA)
            for parameter in parameters:
                _text_rules(parameter.get("schema", {}))
    for name, component in result.get("components", {}).get("schemas", {}).items():
        properties = component.get("properties") or {}
        if "workspace_id" in properties and component.get("type") == "object":
            properties["workspace_id"] = {**properties["workspace_id"], **WORKSPACE_ID_SCHEMA}
        if name.endswith("Request"):  # COMPONENT_SPLIT_REQUEST: what clients send
            for schema in properties.values():
                _text_rules(schema)
                _text_rules(schema.get("items") or {})
    return result
