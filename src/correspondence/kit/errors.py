"""Errors are values: an ApiError carries the upstream code, HTTP status and message.

One renderer turns them into the reference's ProblemDetails shape (api.md §1.6.1); model
validation failures become its validation-problem shape (§1.6.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"

_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    403: "https://tools.ietf.org/html/rfc9110#section-15.5.4",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    406: "https://tools.ietf.org/html/rfc9110#section-15.5.7",
    408: "https://tools.ietf.org/html/rfc9110#section-15.5.9",
    409: "https://tools.ietf.org/html/rfc9110#section-15.5.10",
    413: "https://tools.ietf.org/html/rfc9110#section-15.5.14",
    415: "https://tools.ietf.org/html/rfc9110#section-15.5.16",
    422: "https://tools.ietf.org/html/rfc9110#section-15.5.21",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    451: "https://tools.ietf.org/html/rfc7725#section-3",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
    502: "https://tools.ietf.org/html/rfc9110#section-15.6.3",
    503: "https://tools.ietf.org/html/rfc9110#section-15.6.4",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def status_description(status: int) -> str:
    if status == 500:
        return "An error occurred while processing your request."
    return _TITLES.get(status, "Error")


@dataclass(frozen=True)
class ErrorSpec:
    """A numbered error from the reference catalogue (api.md §8)."""

    code: int
    status: int
    message: str

    def __call__(self, **placeholders: Any) -> ApiError:
        return ApiError(self.code, self.status, self.message.format(**placeholders))


class ApiError(Exception):
    def __init__(self, code: int, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.headers = headers  # e.g. Retry-After on a 429


class PlainError(Exception):
    """An error without an upstream number (scope checks, body limits, media types)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass
class FieldError:
    key: str  # C#-style ModelState key, e.g. Correspondence.Content.MessageTitle
    message: str


@dataclass
class ValidationProblem(Exception):
    errors: list[FieldError] = field(default_factory=list)


def problem_body(status: int, detail: str | None, trace_id: str, code: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": _TYPES.get(status, _TYPES[500] if status >= 500 else _TYPES[400]),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if code is not None:
        body["code"] = f"CORR-{code:05d}"
    body["traceId"] = trace_id
    body["statusDescription"] = status_description(status)
    if code is not None:
        body["errorCode"] = code
    return body


def problem_response(
    status: int,
    detail: str | None,
    trace_id: str,
    code: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        orjson.dumps(problem_body(status, detail, trace_id, code)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def validation_response(problem: ValidationProblem, trace_id: str) -> Response:
    grouped: dict[str, list[str]] = {}
    for err in problem.errors:
        grouped.setdefault(err.key, []).append(err.message)
    body = {
        "type": _TYPES[400],
        "title": "Bad Request",
        "status": 400,
        "code": "STD-00000",
        "traceId": trace_id,
        "statusDescription": "Bad Request",
        "validationErrors": [
            {"code": "CORR.VLD-00000", "title": e.message, "paths": [e.key.replace(".", "/")]}
            for e in problem.errors
        ],
        "errors": grouped,
    }
    return Response(orjson.dumps(body), status_code=400, media_type=PROBLEM_JSON)


def render_error(exc: BaseException, trace_id: str) -> Response | None:
    """The answer for an error value (ApiError, PlainError, ValidationProblem); None for anything
    else, which is a bug and answered 500 by the caller. One place for the app's exception
    handlers and kit/fastpath."""
    if isinstance(exc, ApiError):
        return problem_response(exc.status, exc.message, trace_id, exc.code, headers=exc.headers)
    if isinstance(exc, PlainError):
        return problem_response(exc.status, exc.detail, trace_id, headers=exc.headers)
    if isinstance(exc, ValidationProblem):
        return validation_response(exc, trace_id)
    return None
