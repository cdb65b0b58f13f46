"""Contract: our OpenAPI document covers the official one for every operation implemented so far,
with the members the service has today (tests/official.py current_document; api.md wins).

For each implemented operation every official parameter must exist in ours (same name and location,
same component or type and format), and the official document's parameter, request body and 200
response schemas are followed through their `$ref`s; every component reached must exist in our
document under the same name, with at least the official property names and, for enums, at least
the official values.
Our document may say more (newer members, extra enum values); it may not say less.

Operations the official document lacks are checked against api.md instead: HIDDEN (served, but hidden
from the reference's public document) and NEWER (in api.md §3, newer than the official v1.0.0). Ours
documents both, and tests/test_schemathesis.py fuzzes them from our document.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.official import current_document, official_document

SWAGGER = "/correspondence/api/v1/swagger/v1/swagger.json"
COMPONENTS = "#/components/schemas/"
Operation = tuple[str, str]  # (method, path)

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


def operation_roots(operation: dict[str, Any]) -> list[Any]:
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
        wanted |= reachable(official, operation_roots(official["paths"][path][method]))
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


ONE = "/correspondence/api/v1/correspondence/{correspondenceId}"

# Operations the reference hides from its public document (api.md §4: served, but documented only in
# its Development environment). Ours documents them; here with the answer shape of api.md §6.13.
HIDDEN = {
    ("get", ONE + "/notification/check"): ("CheckNotificationResponse", {"sendNotification": "boolean"}),
    ("get", ONE + "/notification/check/main"): ("CheckNotificationResponse", {"sendNotification": "boolean"}),
    ("get", ONE + "/forward/check"): ("CheckAllowForwardingExt", {"allowForwarding": "boolean"}),
}


@dataclass(frozen=True)
class Newer:
    """How our document describes an operation api.md §3 has and the official JSON (v1.0.0) lacks."""

    media: str  # the 200 answer's only media type
    answer: dict[str, Any]  # its schema
    body: str | None = None  # the JSON request body's component
    members: dict[str, str] = field(default_factory=dict)  # the body's members and their JSON types
    required: frozenset[str] = frozenset()


NEWER = {
    ("post", ONE + "/forward"): Newer(  # api.md §3.11: the forward's id as a JSON string
        media="application/json",
        answer={"type": "string", "format": "uuid"},
        body="ForwardCorrespondenceRequestExt",
        members={"forwardTo": "string", "forwardingText": "string"},
        required=frozenset({"forwardTo"}),
    ),
    ("get", ONE + "/attachments/downloadall"): Newer(  # api.md §3.10: a zip
        media="application/zip",
        answer={"type": "string", "format": "binary"},
    ),
}
# What tests/test_schemathesis.py takes from our document on top of the official one.
EXTRA_OPERATIONS: set[Operation] = set(HIDDEN) | set(NEWER)


def _only_the_correspondence_id(label: str, operation: dict[str, Any]) -> list[str]:
    parameters = [(p["name"], p["in"], p["schema"].get("format")) for p in operation.get("parameters", [])]
    if parameters != [("correspondenceId", "path", "uuid")]:
        return [f"{label}: parameters are {parameters}, not the path's correspondenceId (uuid)"]
    return []


def _member_types(document: dict[str, Any], component: str) -> dict[str, str]:
    """Each member's JSON type, a nullable one's without `null` (`string | null` is `string`)."""
    properties = _properties(document, document.get("components", {}).get("schemas", {}).get(component, {}))
    return {name: "|".join(sorted(_types(p) - {"null"})) for name, p in properties.items()}


def extra_operation_gaps(official: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """What our document lacks of the HIDDEN and NEWER operations as described above."""
    gaps: list[str] = []
    for method, path in sorted(EXTRA_OPERATIONS):
        label = f"{method.upper()} {path}"
        if path in official["paths"]:
            gaps.append(f"{label} is official now: move it to IMPLEMENTED")
        operation = ours.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            gaps.append(f"{label}: operation missing from our document")
            continue
        gaps += _only_the_correspondence_id(label, operation)
        answers = operation.get("responses", {}).get("200", {}).get("content", {})
        if (method, path) in HIDDEN:
            component, members = HIDDEN[method, path]
            expected_media, expected_answer = "application/json", {"$ref": COMPONENTS + component}
            if _member_types(ours, component) != members:
                gaps.append(
                    f"{label}: {component} members are {_member_types(ours, component)}, not {members}"
                )
        else:
            newer = NEWER[method, path]
            expected_media, expected_answer = newer.media, newer.answer
            gaps += _request_body_gaps(label, ours, operation, newer)
        if set(answers) != {expected_media}:
            gaps.append(f"{label}: the 200 answers {sorted(answers)}, not only {expected_media}")
        elif answers[expected_media].get("schema") != expected_answer:
            gaps.append(
                f"{label}: the 200 schema is {answers[expected_media].get('schema')}, not {expected_answer}"
            )
    return gaps


def _request_body_gaps(
    label: str, ours: dict[str, Any], operation: dict[str, Any], newer: Newer
) -> list[str]:
    body = operation.get("requestBody")
    if newer.body is None:
        return [f"{label}: documents a request body"] if body is not None else []
    if body is None or not body.get("required"):
        return [f"{label}: no required request body documented"]
    content = body.get("content", {})
    if (
        set(content) != {"application/json"}
        or _top_ref(content["application/json"].get("schema")) != newer.body
    ):
        return [f"{label}: the request body is not application/json {newer.body}"]
    gaps: list[str] = []
    if _member_types(ours, newer.body) != newer.members:
        gaps.append(
            f"{label}: {newer.body} members are {_member_types(ours, newer.body)}, not {newer.members}"
        )
    required = set(ours["components"]["schemas"][newer.body].get("required", []))
    if required != newer.required:
        gaps.append(f"{label}: {newer.body} requires {sorted(required)}, not {sorted(newer.required)}")
    return gaps


async def test_our_document_covers_the_operations_beyond_the_official_one(client: httpx.AsyncClient) -> None:
    ours = (await client.get(SWAGGER)).json()
    gaps = extra_operation_gaps(official_document(), ours)
    assert not gaps, "Our OpenAPI document lacks operations beyond the official one:\n  " + "\n  ".join(gaps)


def test_an_operation_missing_from_our_document_is_a_gap() -> None:
    official = official_document()
    ours = copy.deepcopy(official)
    gaps = extra_operation_gaps(official, ours)
    for method, path in EXTRA_OPERATIONS:
        assert f"{method.upper()} {path}: operation missing from our document" in gaps


async def test_a_wrongly_described_extra_operation_is_a_gap(client: httpx.AsyncClient) -> None:
    ours = (await client.get(SWAGGER)).json()
    download_all = ours["paths"][ONE + "/attachments/downloadall"]["get"]
    download_all["responses"]["200"]["content"]["application/json"] = {"schema": {}}
    del ours["components"]["schemas"]["ForwardCorrespondenceRequestExt"]["properties"]["forwardingText"]
    ours["paths"][ONE + "/forward/check"]["get"]["parameters"][0]["schema"].pop("format")
    assert extra_operation_gaps(official_document(), ours) == [
        f"GET {ONE}/attachments/downloadall: the 200 answers ['application/json', 'application/zip'], "
        "not only application/zip",
        f"GET {ONE}/forward/check: parameters are [('correspondenceId', 'path', None)], "
        "not the path's correspondenceId (uuid)",
        f"POST {ONE}/forward: ForwardCorrespondenceRequestExt members are {{'forwardTo': 'string'}}, "
        "not {'forwardTo': 'string', 'forwardingText': 'string'}",
    ]


# Our additions beyond the real service (issue 13) live under a prefix of their own, which the real
# service does not have: they are ours, not differences from the contract.
EXTENSIONS = "/ext/api/v1/"
REAL_PREFIX = "/correspondence/api/v1/"


def undeclared_operations(official: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Operations of ours under the real service's prefix that are neither official nor HIDDEN or
    NEWER: a route there could one day clash with one of the real service's."""
    found = []
    for path, operations in ours.get("paths", {}).items():
        if not path.startswith(REAL_PREFIX) or path.startswith(REAL_PREFIX + "swagger"):
            continue
        for method in operations:
            if method not in official["paths"].get(path, {}) and (method, path) not in EXTRA_OPERATIONS:
                found.append(f"{method.upper()} {path}")
    return found


async def test_extensions_are_ours_under_their_own_prefix(client: httpx.AsyncClient) -> None:
    ours = (await client.get(SWAGGER)).json()
    assert undeclared_operations(official_document(), ours) == []
    extensions = {p: ops for p, ops in ours["paths"].items() if p.startswith(EXTENSIONS)}
    assert EXTENSIONS + "batches" in extensions
    for path, operations in extensions.items():
        assert path not in official_document()["paths"]
        for method, operation in operations.items():
            assert operation.get("tags") == ["Extensions"], (method, path)


def test_an_addition_under_the_real_prefix_is_a_difference() -> None:
    official = official_document()
    ours = copy.deepcopy(official)
    ours["paths"][REAL_PREFIX + "batches"] = {"post": {}}
    ours["paths"][EXTENSIONS + "batches"] = {"post": {}}
    assert undeclared_operations(official, ours) == [f"POST {REAL_PREFIX}batches"]


async def test_our_additions_live_under_ext_beside_the_official_paths(client: httpx.AsyncClient) -> None:
    """Operations of our own (issue 13) are under /ext/, a prefix the real service does not use, and
    tagged Extensions: they are ours, not differences from the official document."""
    ours = (await client.get(SWAGGER)).json()
    official = official_document()
    extensions = {path for path in ours["paths"] if path.startswith("/ext/")}
    assert {"/ext/api/v1/sandbox", "/ext/api/v1/limits"} <= extensions
    assert not any(path.startswith("/ext/") for path in official["paths"])
    for path in extensions:
        for operation in ours["paths"][path].values():
            assert "Extensions" in operation.get("tags", []), path
