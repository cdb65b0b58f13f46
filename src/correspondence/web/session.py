"""The browser session: the bearer token in an HttpOnly cookie, and CSRF tokens for forms.

The cookie holds the same JWT the API takes in its Authorization header, and every page validates
it with the service's TokenValidator, so the web pages apply exactly the API's rules and need no
server-side session store (any replica can serve any page).

CSRF: a form's token is an HMAC of the session token, so only a page rendered for this session
can know it (the cookie is HttpOnly and SameSite=Lax, and the HMAC cannot be computed without the
token). The sign-in form, before any session exists, uses a random double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from correspondence.auth.caller import Caller
from correspondence.auth.tokens import InvalidToken, TokenValidator

SESSION_COOKIE = "corr_session"
SIGNIN_COOKIE = "corr_signin"  # double-submit token of the sign-in form
PARTY_COOKIE = "corr_party"  # the organisation a person acts for (a party URN), if any
LANG_COOKIE = "corr_lang"
FLASH_COOKIE = "corr_flash"  # a one-shot message after a POST-redirect-GET

_CSRF_CONTEXT = b"correspondence-web-csrf-v1"


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None = None
) -> None:
    """Every cookie of the pages: HttpOnly, SameSite=Lax, and Secure in production whatever scheme
    the request arrived with (behind a TLS-terminating proxy it is plain http here)."""
    secure = request.url.scheme == "https" or request.app.state.services.settings.mode == "production"
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure)


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_ok(session_token: str | None, submitted: str | None) -> bool:
    if not session_token or not submitted:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    return hmac.compare_digest(csrf_token(session_token).encode(), submitted.encode())


def new_signin_token() -> str:
    return secrets.token_urlsafe(24)


def signin_ok(cookie: str | None, submitted: str | None) -> bool:
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


async def caller_of(validator: TokenValidator, token: str | None) -> Caller | None:
    """The caller of a session token, or None when it is missing, invalid or expired."""
    if not token:
        return None
    try:
        return await validator.validate(token)
    except InvalidToken:
        return None


def safe_next(path: str | None, default: str = "/inbox") -> str:
    """Only local paths: a `next` that points elsewhere would make the language switch an open
    redirect."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path
