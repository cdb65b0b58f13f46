"""Contract: our OpenAPI document covers the official one for every operation implemented so far,
with the members the service has today (tests/official.py current_document; api.md wins).

For each implemented operation every official parameter must exist in ours (same name and location,
same component or type and format), and the official document's parameter, request body and 200
response schemas are followed through their `$ref`s; every component reached must exist in our
document under the same name, with at least the official property names and, for enums, at least
the official values.
Our document may say more (newer members, extra enum values); it may not say less.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests.official import current_document, official_document

SWAGGER = "/correspondence/api/v1/swagger/v1/swagger.json"
COMPONENTS = "#/components/schemas/"

# Every official operation implemented so far, as (method, path). Add an entry when an endpoint lands:
# this test then checks its schemas, and tests/test_schemathesis.py starts fuzzing it.
IMPLEMENTED = {
    ("post", "/correspondence/api/v1/correspondence"),
    ("get", "/correspondence/api/v1/correspondence/{correspondenceId}"),
    ("get", "/correspondence/api/v1/correspondence/{correspondenceId}/details"),
    ("get", "/correspondence/api/v1/correspondence"),
    ("get", "/correspondence/api/v1/correspondence/{correspondenceId}/content"),
    ("post", "/correspondence/api/v1/correspondence/{correspondenceId}/markasread"),
    ("post", "/correspondence/api/v1/correspondence/{correspondenceId}/confirm"),
    ("post", "/correspondence/api/v1/correspondence/{correspondenceId}/archive"),
    ("delete", "/correspondence/api/v1/correspondence/{correspondenceId}/purge"),
    ("post", "/correspondence/api/v1/correspondence/upload"),
    ("get", "/correspondence/api/v1/correspondence/{correspondenceId}/attachment/{attachmentId}/download"),
    ("post", "/correspondence/api/v1/attachment"),
    ("post", "/correspondence/api/v1/attachment/{attachmentId}/upload"),
    ("get", "/correspondence/api/v1/attachment/{attachmentId}"),
    ("get", "/correspondence/api/v1/attachment/{attachmentId}/details"),
    ("delete", "/correspondence/api/v1/attachment/{attachmentId}"),
    ("get", "/correspondence/api/v1/attachment/{attachmentId}/download"),
}


def _refs(node: Any) -> Iterator[str]:
    """Component names referenced anywhere inside a schema fragment."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(COMPONENTS):
            yield ref.removeprefix(COMPONENTS)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _operation_roots(operation: dict[str, Any]) -> list[Any]:
    """Schemas of the parameters, the request body and the 200 response, for every media type."""
    roots = [parameter.get("schema") for parameter in operation.get("parameters", [])]
    roots += [media.get("schema") for media in operation.get("requestBody", {}).get("content", {}).values()]
    ok = operation.get("responses", {}).get("200", {})
    roots += [media.get("schema") for media in ok.get("content", {}).values()]
    return [r for r in roots if r is not None]


def reachable(document: dict[str, Any], roots: list[Any]) -> set[str]:
    """Names of all components reachable from `roots`, following `$ref`s transitively."""
    components = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    pending = [name for root in roots for name in _refs(root)]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(_refs(components.get(name, {})))
    return seen


def _resolve(document: dict[str, Any], schema: Any) -> Any:
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        schema = document["components"]["schemas"].get(schema["$ref"].removeprefix(COMPONENTS), {})
    return schema


def _properties(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Property schemas of an object schema, including those composed in with allOf."""
    props = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        props.update(_properties(document, _resolve(document, part)))
    return props


def _enum_values(document: dict[str, Any], schema: Any) -> set[Any] | None:
    """The values an enum schema admits (through $ref/anyOf/oneOf/allOf wrappers), else None."""
    schema = _resolve(document, schema)
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return {v for v in schema["enum"] if v is not None}
    if "const" in schema:
        return {schema["const"]}
    found: set[Any] | None = None
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            values = _enum_values(document, part)
            if values is not None:
                found = (found or set()) | values
    return found


def _top_ref(schema: Any) -> str | None:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        return str(schema["$ref"]).removeprefix(COMPONENTS)
    return None


def _types(schema: Any) -> set[str]:
    """The JSON types a parameter schema names, at its top level or in anyOf/oneOf parts."""
    if not isinstance(schema, dict):
        return set()
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for key in ("anyOf", "oneOf"):
        for part in schema.get(key, []):
            found |= _types(part)
    return found


def parameter_gaps(label: str, official_op: dict[str, Any], our_op: dict[str, Any]) -> list[str]:
    """Every official parameter exists in ours under the same name and location, with the same
    component (for a `$ref`) or type and format."""
    gaps: list[str] = []
    ours = {(p["name"], p["in"]): p.get("schema", {}) for p in our_op.get("parameters", [])}
    for parameter in official_op.get("parameters", []):
        key = (parameter["name"], parameter["in"])
        official_schema = parameter.get("schema", {})
        if key not in ours:
            gaps.append(f"{label}: {parameter['in']} parameter {parameter['name']!r} missing")
            continue
        expected_ref = _top_ref(official_schema)
        if expected_ref is not None:
            if _top_ref(ours[key]) != expected_ref:
                gaps.append(f"{label}: parameter {parameter['name']!r} is not documented as {expected_ref}")
            continue
        expected_type = official_schema.get("type")
        if expected_type is not None and expected_type not in _types(ours[key]):
            gaps.append(f"{label}: parameter {parameter['name']!r} is not of type {expected_type}")
        expected_format = official_schema.get("format")
        if expected_format is not None and ours[key].get("format") != expected_format:
            gaps.append(f"{label}: parameter {parameter['name']!r} is not of format {expected_format}")
    return gaps


def contract_gaps(official: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    gaps: list[str] = []
    ours_components = ours.get("components", {}).get("schemas", {})
    official_components = official["components"]["schemas"]
    for method, path in sorted(IMPLEMENTED):
        official_op = official["paths"].get(path, {}).get(method)
        assert official_op is not None, f"IMPLEMENTED lists {method.upper()} {path}, which is not official"
        our_op = ours.get("paths", {}).get(path, {}).get(method)
        if our_op is None:
            gaps.append(f"{method.upper()} {path}: operation missing from our document")
            continue
        gaps += parameter_gaps(f"{method.upper()} {path}", official_op, our_op)
        # The body and the 200 response must be documented under the official component names.
        for where, official_schemas, our_schemas in (
            (
                "request body",
                official_op.get("requestBody", {}).get("content", {}),
                our_op.get("requestBody", {}).get("content", {}),
            ),
            (
                "200 response",
                official_op.get("responses", {}).get("200", {}).get("content", {}),
                our_op.get("responses", {}).get("200", {}).get("content", {}),
            ),
        ):
            for media, media_object in official_schemas.items():
                expected = _top_ref(media_object.get("schema"))
                if expected is None:
                    continue
                actual = _top_ref(our_schemas.get(media, {}).get("schema"))
                if actual != expected:
                    gaps.append(
                        f"{method.upper()} {path}: {where} ({media}) is {actual or 'undocumented'}, "
                        f"official is {expected}"
                    )

    wanted: set[str] = set()
    for method, path in IMPLEMENTED:
        wanted |= reachable(official, _operation_roots(official["paths"][path][method]))
    for name in sorted(wanted):
        official_schema = official_components[name]
        our_schema = ours_components.get(name)
        if our_schema is None:
            gaps.append(f"component {name}: missing from our document")
            continue
        official_values = _enum_values(official, official_schema)
        if official_values is not None:
            our_values = _enum_values(ours, our_schema) or set()
            missing_values = sorted(official_values - our_values, key=str)
            if missing_values:
                gaps.append(f"enum {name}: missing values {missing_values}")
        official_props = _properties(official, official_schema)
        our_props = _properties(ours, our_schema)
        missing = sorted(set(official_props) - set(our_props))
        if missing:
            gaps.append(f"component {name}: missing properties {missing}")
        # Inline enums on properties (none in today's document, but cheap to keep honest).
        for prop, prop_schema in official_props.items():
            if prop not in our_props or _top_ref(prop_schema) is not None:
                continue
            inline = _enum_values(official, prop_schema)
            if inline is None:
                continue
            mine = _enum_values(ours, our_props[prop]) or set()
            if inline - mine:
                gaps.append(f"property {name}.{prop}: missing enum values {sorted(inline - mine, key=str)}")
    return gaps


def test_official_document_is_readable() -> None:
    official = official_document()
    names = reachable(official, [{"$ref": COMPONENTS + "InitializeCorrespondencesExt"}])
    # A sanity check on the walker: the request body reaches deep into the notification block.
    expected = {"BaseCorrespondenceExt", "InitializeCorrespondenceNotificationExt", "NotificationTemplateExt"}
    assert expected <= names


def test_parameters_are_compared_by_name_location_and_type() -> None:
    official = {
        "parameters": [
            {"name": "role", "in": "query", "schema": {"$ref": COMPONENTS + "CorrespondencesRoleType"}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "format": "int32"}},
            {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        ]
    }
    ours = {
        "parameters": [
            {"name": "role", "in": "query", "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            {"name": "offset", "in": "query", "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            {"name": "from_", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        ]
    }
    assert parameter_gaps("GET /x", official, ours) == [
        "GET /x: parameter 'role' is not documented as CorrespondencesRoleType",
        "GET /x: parameter 'offset' is not of type integer",
        "GET /x: parameter 'offset' is not of format int32",
        "GET /x: query parameter 'from' missing",
    ]


async def test_our_document_covers_the_official_contract(client: httpx.AsyncClient) -> None:
    response = await client.get(SWAGGER)
    assert response.status_code == 200, response.text
    ours = response.json()
    gaps = contract_gaps(current_document(), ours)
    assert not gaps, "Our OpenAPI document lacks parts of the official contract:\n  " + "\n  ".join(gaps)


# Operations the reference hides from its public document (api.md §4: served, but documented only in
# its Development environment). Ours documents them; here with the answer shape of api.md §6.13.
HIDDEN = {
    ("get", "/correspondence/api/v1/correspondence/{correspondenceId}/notification/check"): (
        "CheckNotificationResponse",
        {"sendNotification": "boolean"},
    ),
    ("get", "/correspondence/api/v1/correspondence/{correspondenceId}/notification/check/main"): (
        "CheckNotificationResponse",
        {"sendNotification": "boolean"},
    ),
}


async def test_our_document_covers_the_hidden_operations_we_serve(client: httpx.AsyncClient) -> None:
    ours = (await client.get(SWAGGER)).json()
    official = official_document()
    for (method, path), (component, members) in HIDDEN.items():
        assert path not in official["paths"], f"{path} is official now: move it to IMPLEMENTED"
        operation = ours["paths"].get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} missing from our document"
        assert [(p["name"], p["in"], p["schema"].get("format")) for p in operation["parameters"]] == [
            ("correspondenceId", "path", "uuid")
        ]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert _top_ref(schema) == component
        properties = ours["components"]["schemas"][component]["properties"]
        assert {name: p.get("type") for name, p in properties.items()} == members
