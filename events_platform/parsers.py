"""Request parsing: every API body is JSON, whatever Content-Type the client sent.

curl's ``-d`` sends ``application/x-www-form-urlencoded`` by default; answering that with
415 helps nobody, so any body is read as JSON and malformed JSON is a clear 400.

JSON can say things no field of ours can hold, and the parser refuses them up front with a 400
naming where they are (``events[0].properties.note``), so no view, serializer or database ever
sees them:

- a lone UTF-16 surrogate (``"\\ud800"``, in a key or a string): not a Unicode character, it
  cannot be encoded to UTF-8 for the database or for our own answer;
- a number beyond a double's range (``1e400``): Python reads it as infinity, which JSON and
  PostgreSQL's jsonb cannot hold (``NaN`` and ``Infinity`` are refused as invalid JSON already);
- nesting deeper than ``MAX_DEPTH`` levels.

The NUL character is valid JSON and valid Unicode but no text column or jsonb value can hold it;
each field refuses it with its own message (``unsafe_value`` finds it for fields holding JSON).
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

# Deeper than any real payload; deeper input is refused before it can exhaust the stack.
MAX_DEPTH = 64

Problem = Literal["nul", "surrogate", "non_finite"]

MESSAGES: dict[Problem, str] = {
    "nul": "Must not contain the NUL character (\\u0000) in any key or string.",
    "surrogate": (
        "Must not contain a lone UTF-16 surrogate (\\ud800-\\udfff) in any key or string: it is not a "
        "Unicode character. Send the character itself, or its surrogate pair."
    ),
    "non_finite": "Must be a finite number: this one is beyond the range of a double (about 1.8e308).",
}


def _text_problem(text: str, *, nul: bool) -> Problem | None:
    if text.isascii():  # the common case, at C speed: no surrogate possible
        return "nul" if nul and "\x00" in text else None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "surrogate"
    return "nul" if nul and "\x00" in text else None


def _scalar_problem(value: Any, *, nul: bool) -> Problem | None:
    if isinstance(value, str):
        return _text_problem(value, nul=nul)
    if isinstance(value, float) and not math.isfinite(value):
        return "non_finite"
    return None


def printable(text: str) -> str:
    """``text`` with lone surrogates and NUL written as escapes, safe to put in an answer."""
    if text.isascii() and "\x00" not in text:
        return text
    return "".join(f"\\u{ord(char):04x}" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    name = printable(str(key))
    return f"{prefix}.{name}" if prefix else name


def unsafe_value(value: Any, *, nul: bool = True, path: str = "") -> tuple[str, Problem] | None:
    """The path and kind of the first key, string or number in ``value`` (a parsed JSON value)
    that no field can store: a lone surrogate, a non-finite number, or (``nul``) the NUL
    character. None when there is none. Paths read like the client's payload
    (``properties.note``, ``events[3].properties``); iterative, so any depth is safe."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, item_path = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = _join(item_path, key)
                problem = _text_problem(key, nul=nul) if isinstance(key, str) else None
                if problem is not None:
                    return child_path, problem
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, _join(item_path, index)) for index, child in enumerate(item))
        else:
            problem = _scalar_problem(item, nul=nul)
            if problem is not None:
                return item_path or "non_field_errors", problem
    return None


def _scan(value: Any) -> tuple[int, bool]:
    """(nesting depth, whether anything is unsafe apart from NUL), without recursion or paths:
    the cheap pass every body takes; ``unsafe_value`` finds the path only when needed."""
    deepest = 0
    unsafe = False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth, unsafe
            for key, child in item.items():
                if not unsafe and isinstance(key, str) and not key.isascii():
                    unsafe = _text_problem(key, nul=False) is not None
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth, unsafe
            stack.extend((child, depth + 1) for child in item)
        elif not unsafe:
            unsafe = _scalar_problem(item, nul=False) is not None
    return deepest, unsafe


def _depth(value: Any) -> int:
    """Nesting depth, computed without recursion."""
    return _scan(value)[0]


def loads_bounded(text: str) -> Any:
    """``json.loads`` for text a person or a client sent: ``ValueError`` for malformed JSON,
    NaN or Infinity, nesting deeper than ``MAX_DEPTH`` (never a ``RecursionError``), and what
    :func:`check_body` refuses (a lone surrogate could not even be written back in a page)."""

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        data = json.loads(text, parse_constant=refuse_constant)
    except RecursionError as exc:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from exc
    try:
        check_body(data)
    except (ParseError, ValidationError) as exc:
        raise ValueError(str(exc.detail)) from exc
    return data


def check_body(data: Any) -> None:
    """Refuse what no field can hold (see the module's docstring): ``ParseError`` for nesting,
    ``ValidationError`` at the path of a lone surrogate or a non-finite number."""
    depth, unsafe = _scan(data)
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
    if unsafe:
        found = unsafe_value(data, nul=False)
        if found is not None:
            path, problem = found
            raise ValidationError({path: [MESSAGES[problem]]})


class AnyContentTypeJSONParser(JSONParser):
    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from exc
        check_body(data)
        return data
