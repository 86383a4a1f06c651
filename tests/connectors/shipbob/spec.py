"""Requests and responses checked against ShipBob's own OpenAPI description, API 2026-01
(``shared/specs/shipbob/openapi-2026-01.json``, OpenAPI 3.0).

Usable by every ShipBob test: :func:`check_request` lists what is wrong with one request
(an empty list: valid), :func:`check_response` the same for an answer. The emulator takes
:func:`check_request` as its ``request_validator`` (see ``conftest.py``): an invalid request
is answered 400 with the violations and recorded in ``emulator.violations``, so an
end-to-end test can assert that none were sent.

The file is read as written, with the few readings a generated spec needs to be usable at
all, each listed in :data:`READINGS`:

- ``additionalProperties`` beside a ``$ref``, or on a schema that is not an object, is
  ignored (OpenAPI 3.0 ignores ``$ref`` siblings; the generator put it on every node);
- ``allOf`` parts are merged into one object (each part says ``additionalProperties:
  false``, so read literally no object could satisfy two parts);
- ``oneOf`` is read as ``anyOf`` (variant views overlap: a plain variant matches both);
- a required name that the object's own properties do not declare, where the object
  forbids other properties, is dropped (``product_id`` on an order line by id,
  ``purchaseOrderNumber`` beside ``purchase_order_number``);
- ``nullable: true`` admits null.

Query parameter names are matched case-insensitively, as ASP.NET binds them (the spec's own
``next`` example spells ``Cursor`` as ``cursor``). ``Cursor`` is accepted on the paged reads
whose response has a ``next`` link, which is how their pages are followed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker  # type: ignore[import-untyped]

#: A copy of shared/specs/shipbob/openapi-2026-01.json (ShipBob's published file, unchanged).
SPEC_PATH = Path(__file__).with_name("openapi-2026-01.json")

#: The readings applied to the spec (see the module docstring), filled as schemas load.
READINGS: list[str] = []

INT32 = (-(2**31), 2**31 - 1)


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


# -- schemas ------------------------------------------------------------------------------


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        node = spec()["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _merged(node: Mapping[str, Any]) -> dict[str, Any]:
    """An ``allOf`` as one object: properties and required names together."""
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    closed = False
    own = {k: v for k, v in node.items() if k != "allOf"}
    for part in [*node["allOf"], own]:
        part = _resolve(part)
        if "allOf" in part:
            part = _merged(part)
        for name, sub in part.get("properties", {}).items():
            known = merged["properties"].get(name)
            # the same property in two parts: both constraints hold (quantity >= 1)
            both = known is not None and "$ref" not in known and "$ref" not in sub
            merged["properties"][name] = {**known, **sub} if both else sub
        merged["required"] += [r for r in part.get("required", []) if r not in merged["required"]]
        closed = closed or part.get("additionalProperties") is False
    for key, value in node.items():
        if key not in ("allOf", "additionalProperties", "properties", "required", "type"):
            merged[key] = value
    merged["additionalProperties"] = not closed
    return merged


def _convert(node: Any, where: str) -> Any:
    if not isinstance(node, Mapping):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    if "allOf" in node:
        node = _merged(node)
    out: dict[str, Any] = {}
    is_object = node.get("type") == "object" or "properties" in node
    for key, value in node.items():
        if key in ("description", "example", "examples", "discriminator", "nullable"):
            continue
        if key.startswith("x-"):
            continue
        if key == "additionalProperties":
            if is_object:
                out[key] = _convert(value, where) if isinstance(value, Mapping) else value
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, f"{where}.{name}") for name, sub in value.items()}
        elif key == "items":
            if node.get("type") == "array":
                out[key] = _convert(value, f"{where}[]")
        elif key in ("oneOf", "anyOf"):
            out["anyOf"] = [_convert(sub, where) for sub in value]
        elif key == "required":
            declared = node.get("properties", {})
            if node.get("additionalProperties") is False and declared:
                kept = [name for name in value if name in declared]
                for name in value:
                    if name not in declared:
                        READINGS.append(f"{where}: required {name!r} is not a declared property")
                if kept:
                    out[key] = kept
            elif value:
                out[key] = list(value)
        else:
            out[key] = value
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _root() -> dict[str, Any]:
    schemas = spec()["components"]["schemas"]
    return {
        "components": {"schemas": {name: _convert(s, name) for name, s in schemas.items()}},
    }


def readings() -> list[str]:
    """The readings the loaded spec needed (see the module docstring)."""
    _root()
    return list(READINGS)


_FORMATS = FormatChecker(formats=())


def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or INT32[0] <= value <= INT32[1]


_FORMATS.checks("date-time", raises=ValueError)(_is_date_time)
_FORMATS.checks("int32")(_is_int32)


@cache
def _validator(ref: str) -> Draft4Validator:
    return Draft4Validator({"allOf": [{"$ref": ref}], **_root()}, format_checker=_FORMATS)


def _inline_validator(schema: Mapping[str, Any]) -> Draft4Validator:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _validator(ref)
    return Draft4Validator(
        {"allOf": [_convert(schema, "inline")], **_root()}, format_checker=_FORMATS
    )


def schema_errors(schema: Mapping[str, Any], instance: Any, where: str) -> list[str]:
    """What is wrong with ``instance`` against a schema of the spec (usually a ``$ref``)."""
    found = []
    for error in sorted(_inline_validator(schema).iter_errors(instance), key=str):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        message = error.message
        if error.context:  # an anyOf: why each branch refused it
            branches: dict[Any, list[str]] = {}
            for sub in error.context:
                inner = list(sub.absolute_path)[len(error.absolute_path) :]
                label = ".".join(map(str, inner)) or "value"
                branches.setdefault(sub.schema_path[0], []).append(f"{label}: {sub.message}")
            message += " (" + "; or ".join("; ".join(b) for b in branches.values()) + ")"
        found.append(f"{where}{path}: {message}")
    return found


# -- operations ---------------------------------------------------------------------------


@cache
def _routes() -> list[tuple[re.Pattern[str], str, int]]:
    routes = []
    for template in spec()["paths"]:
        pattern = "".join(
            f"(?P<{piece[1:-1]}>[^/:]+)" if piece.startswith("{") else re.escape(piece)
            for piece in re.split(r"(\{[^}]+\})", template)
        )
        routes.append((re.compile(f"^{pattern}$"), template, template.count("{")))
    routes.sort(key=lambda route: route[2])  # literal segments win over parameters
    return routes


def operation(method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]] | None:
    """The spec's (template, operation, path parameters) for a request, None if none."""
    for pattern, template, _ in _routes():
        found = pattern.match(path)
        if found is not None:
            op = spec()["paths"][template].get(method.lower())
            if op is not None:
                return template, op, found.groupdict()
    return None


def _check_value(name: str, raw: str, schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    form = schema.get("format")
    values = raw.split(",") if "items" in schema else [raw]
    item = schema.get("items", {}) if "items" in schema else schema
    for value in values:
        value = value.strip()
        item_kind = item.get("type", kind) if "items" in schema else kind
        item_form = item.get("format", form) if "items" in schema else form
        if item_kind in ("integer", "number") or item_form in ("int32", "int64"):
            try:
                number = float(value) if item_kind == "number" and "." in value else int(value)
            except ValueError:
                return f"{name}={raw!r} is not {item_form or item_kind}"
            if "minimum" in schema and number < schema["minimum"]:
                return f"{name}={raw!r} is below the minimum {schema['minimum']:g}"
            if "maximum" in schema and number > schema["maximum"]:
                return f"{name}={raw!r} is above the maximum {schema['maximum']:g}"
            if item_form == "int32" and not INT32[0] <= number <= INT32[1]:
                return f"{name}={raw!r} is not an int32"
        elif item_kind == "boolean":
            if value.lower() not in ("true", "false"):
                return f"{name}={raw!r} is not a boolean"
        elif item_form == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return f"{name}={raw!r} is not a date-time"
        if "enum" in schema and value not in [str(e) for e in schema["enum"]]:
            return f"{name}={raw!r} is not one of {schema['enum']}"
    return None


def _pages_by_cursor(op: Mapping[str, Any]) -> bool:
    ok = op.get("responses", {}).get("200", {})
    schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
    return "next" in _resolve(schema).get("properties", {})


def check_request(
    method: str,
    path: str,
    query: Mapping[str, str | Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | Any = None,
) -> list[str]:
    """What is wrong with one request against the spec: its path and method exist, its
    required parameters are there, each parameter has the declared type, range and enum,
    no query parameter is unknown, and its JSON body is valid against the requestBody
    schema. ``body`` is raw bytes/text or already-decoded JSON; None for no body."""
    found = operation(method, path)
    where = f"{method.upper()} {path}"
    if found is None:
        return [f"{where}: no such operation in the spec"]
    template, op, path_params = found
    queries = {k.lower(): (v if isinstance(v, str) else v[-1]) for k, v in (query or {}).items()}
    lowered_headers = {k.lower(): v for k, v in (headers or {}).items()}
    problems: list[str] = []
    declared: set[str] = set()
    for param in op.get("parameters", []):
        name, place, schema = param["name"], param["in"], param.get("schema", {})
        if place == "query":
            declared.add(name.lower())
            value = queries.get(name.lower())
        elif place == "header":
            value = lowered_headers.get(name.lower())
        elif place == "path":
            value = path_params.get(name)
        else:
            continue
        if value is None:
            if param.get("required"):
                problems.append(f"{where}: required {place} parameter {name!r} is missing")
            continue
        problem = _check_value(name, value, schema)
        if problem is not None:
            problems.append(f"{where}: {place} parameter {problem}")
    if _pages_by_cursor(op):
        declared.add("cursor")
    for name in queries:
        if name not in declared:
            problems.append(f"{where}: unknown query parameter {name!r} (spec of {template})")
    request_body = op.get("requestBody")
    if request_body is not None:
        schema = request_body.get("content", {}).get("application/json", {}).get("schema")
        if body is None or body in (b"", ""):
            if request_body.get("required", True) and schema is not None:
                problems.append(f"{where}: the JSON body is missing")
        elif schema is not None:
            try:
                decoded = json.loads(body) if isinstance(body, (bytes, str)) else body
            except ValueError as err:
                return [*problems, f"{where}: the body is not JSON: {err}"]
            problems += schema_errors(schema, decoded, f"{where} body")
    return problems


def check_response(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with an answer against the operation's response schema for
    ``status`` (nothing to check when the spec declares no JSON schema for it)."""
    found = operation(method, path)
    where = f"{method.upper()} {path} -> {status}"
    if found is None:
        return [f"{where}: no such operation in the spec"]
    response = found[1].get("responses", {}).get(str(status))
    if response is None:
        return [f"{where}: the spec declares no {status} answer"]
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return []
    return schema_errors(schema, body, f"{where} body")


def request_schema(method: str, path: str) -> Mapping[str, Any] | None:
    """The requestBody schema of an operation, for tests that want to look."""
    found = operation(method, path)
    if found is None:
        return None
    content = found[1].get("requestBody", {}).get("content", {})
    schema: Mapping[str, Any] | None = content.get("application/json", {}).get("schema")
    return schema
