"""Routes of the web slice: server-rendered pages for recipients (inbox) and service owners (sent).

Each page reads the session cookie, validates the token with the service's TokenValidator and calls
the same use cases the API's endpoints call, so the pages follow the API's access rules and show
its error messages. Forms post back with a CSRF token and answer with a redirect (PRG).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute

from correspondence.attachment.files import content_disposition, download_type, zip_content_disposition
from correspondence.attachment.use_cases.download import recipient_download
from correspondence.attachment.use_cases.download_all import recipient_download_all
from correspondence.auth import scopes
from correspondence.auth.dependencies import ServicesDep
from correspondence.batch.use_cases.cancel import cancel_batch
from correspondence.config import is_loopback
from correspondence.correspondence import errors as correspondence_errors
from correspondence.correspondence.use_cases.access import may_act_for, resolve
from correspondence.correspondence.use_cases.archive import archive
from correspondence.correspondence.use_cases.confirm import confirm
from correspondence.correspondence.use_cases.forward import forward
from correspondence.correspondence.use_cases.mark_as_read import mark_as_read
from correspondence.correspondence.use_cases.purge import purge
from correspondence.correspondence.use_cases.view import get_content, get_details, get_overview
from correspondence.events import repository as events_repo
from correspondence.kit.errors import ApiError
from correspondence.kit.http import read_form
from correspondence.kit.outage import RETRY_AFTER_SECONDS, is_database_unavailable
from correspondence.kit.text import is_national_identity_number, is_valid_org_number
from correspondence.notification import repository as notification_repo
from correspondence.recall.use_cases.pause import set_paused
from correspondence.recall.use_cases.recall import recall_correspondence
from correspondence.web import pages, static
from correspondence.web.pages import Context, Flash, SignInRequired, WebError
from correspondence.web.session import (
    FLASH_COOKIE,
    LANG_COOKIE,
    PARTY_COOKIE,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    caller_of,
    csrf_ok,
    new_signin_token,
    safe_next,
    set_cookie,
    signin_ok,
)
from correspondence.web.texts import LANGUAGES, TEXTS

log = logging.getLogger("correspondence.web")
READ = scopes.READ
ORG_SCOPES = f"{scopes.READ} {scopes.WRITE} {scopes.SERVICE_OWNER}"


class WebRoute(APIRoute):
    """Times each page (Server-Timing: the bench reads it) and turns the slice's exceptions into
    pages: a missing session goes to sign-in, an API error becomes a page with its message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await original(request)
            except SignInRequired as exc:
                response = _to_signin(request, exc.expired)
            except WebError as exc:
                response = pages.error_page(request, exc.status, exc.message)
            except ApiError as exc:
                response = pages.error_page(request, exc.status, exc.message)
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                request.app.state.outages.note(exc, request.method, request.url.path)
                lang = pages.language(request)
                response = pages.error_page(request, 503, TEXTS[lang]["unavailable"])
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
            return response

        return handler


router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _to_signin(request: Request, expired: bool) -> Response:
    query = {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
    if expired:
        query["expired"] = "1"
    response = RedirectResponse("/signin?" + urlencode(query), status_code=303)
    if expired:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def _context(request: Request, svc: ServicesDep) -> Context:
    token = request.cookies.get(SESSION_COOKIE)
    caller = await caller_of(svc.validator, token)
    valid = token if caller else None
    return Context(request, svc, pages.language(request), valid, caller, token is not None)


Ctx = Annotated[Context, Depends(_context)]


def _redirect(location: str, flash: Flash | None = None) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    if flash is not None:
        pages.set_flash(response, flash)
    return response


async def _form(request: Request, svc: ServicesDep) -> dict[str, Any]:
    """The posted form, read (media type and size checked) before the session is looked at: a
    route lists it before its `Ctx`, and FastAPI resolves dependencies in that order."""
    fields = await read_form(request, svc.settings.max_form_bytes)
    return {"_ids": [v for k, v in fields if k == "ids"], **dict(fields)}


Form = Annotated[dict[str, Any], Depends(_form)]


def _check_csrf(ctx: Context, form: dict[str, Any]) -> None:
    if not csrf_ok(ctx.token, form.get("csrf")):
        raise WebError(403, ctx.t("csrf_failed"))


def _uuid(value: str, ctx: Context) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise WebError(404, ctx.t("not_found")) from None


# --- landing, sign-in, language ---------------------------------------------------------------------


@router.get("/")
async def home(ctx: Ctx) -> Response:
    return RedirectResponse("/inbox" if ctx.caller else "/signin", status_code=303)


@router.get("/static/web/{name}")
async def static_file(name: str) -> Response:
    return static.serve(name)


@router.get("/signin")
async def signin_page(ctx: Ctx) -> Response:
    query = ctx.request.query_params
    error = ctx.t("signin_expired") if query.get("expired") else None
    return pages.signin(ctx, next_path=safe_next(query.get("next")), error=error)


@router.post("/signin")
async def signin(form: Form, ctx: Ctx) -> Response:
    next_path = safe_next(form.get("next"))
    if not signin_ok(ctx.request.cookies.get(SIGNIN_COOKIE), form.get("csrf")):
        return pages.signin(ctx, next_path=next_path, error=ctx.t("csrf_failed"), status=403)
    kind = form.get("kind")
    dev = ctx.svc.dev_issuer
    if dev is not None and kind in ("person", "org") and not _dev_signin_allowed(ctx):
        return pages.signin(ctx, next_path=next_path, error=ctx.t("signin_bad_token"), status=403)
    if kind == "person" and dev is not None:
        pid = (form.get("pid") or "").strip()
        if not is_national_identity_number(pid):
            return pages.signin(ctx, next_path=next_path, error=ctx.t("signin_bad_pid"), status=400)
        token = dev.mint(scope=READ, pid=pid)
    elif kind == "org" and dev is not None:
        org = (form.get("org") or "").strip().rsplit(":", 1)[-1]
        if not is_valid_org_number(org):
            return pages.signin(ctx, next_path=next_path, error=ctx.t("signin_bad_org"), status=400)
        token = dev.mint(scope=ORG_SCOPES, org=org)
        next_path = safe_next(form.get("next"), default="/sent")
    elif kind == "token":
        token = (form.get("token") or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
    else:
        return pages.signin(ctx, next_path=next_path, error=ctx.t("signin_bad_token"), status=400)
    caller = await caller_of(ctx.svc.validator, token)
    if caller is None:
        return pages.signin(ctx, next_path=next_path, error=ctx.t("signin_bad_token"), status=400)
    response = _redirect(next_path)
    lifetime = max(int(caller.expires - time.time()), 0)
    set_cookie(ctx.request, response, SESSION_COOKIE, token, max_age=lifetime)
    response.delete_cookie(PARTY_COOKIE, path="/")
    # A new sign-in token: a form seen before this sign-in is spent.
    set_cookie(ctx.request, response, SIGNIN_COOKIE, new_signin_token())
    return response


def _dev_signin_allowed(ctx: Context) -> bool:
    """The development sign-in mints any token: only for a browser on this machine, unless the
    operator opted in to an exposed development mode (then every such sign-in is logged)."""
    client = ctx.request.client
    if client is not None and is_loopback(client.host):
        return True
    if ctx.svc.settings.allow_insecure_development:
        log.warning("development sign-in from %s", client.host if client else "an unknown address")
        return True
    return False


@router.post("/signout")
async def signout(form: Form, ctx: Ctx) -> Response:
    if ctx.token is not None:
        _check_csrf(ctx, form)
    response = _redirect("/signin")
    for name in (SESSION_COOKIE, PARTY_COOKIE, FLASH_COOKIE):
        response.delete_cookie(name, path="/")
    return response


@router.get("/lang/{code}")
async def switch_language(code: str, request: Request) -> Response:
    response = RedirectResponse(safe_next(request.query_params.get("next"), "/"), status_code=303)
    if code in LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, code, max_age=365 * 86400)
    return response


@router.post("/act")
async def act_for(form: Form, ctx: Ctx) -> Response:
    """A person chooses whose inbox to see: their own, or an organisation they have a delegation for."""
    caller = ctx.require()
    _check_csrf(ctx, form)
    party = (form.get("party") or "").strip()
    response = _redirect("/inbox")
    if not party:
        response.delete_cookie(PARTY_COOKIE, path="/")
        return response
    if not await may_act_for(ctx.svc.pool, caller, party):
        raise correspondence_errors.NO_ACCESS()
    set_cookie(ctx.request, response, PARTY_COOKIE, party)
    return response


# --- inbox -----------------------------------------------------------------------------------------


@router.get("/inbox")
async def inbox(ctx: Ctx) -> Response:
    return await pages.inbox(ctx)


@router.post("/inbox/bulk")
async def bulk(form: Form, ctx: Ctx) -> Response:
    """Mark as read or archive several at once, one use case call each (the API's rules per item).
    Marking as read needs a fetch first (1024), so each is fetched as a client of the API would."""
    caller = ctx.require(READ)
    _check_csrf(ctx, form)
    back = safe_next(form.get("back"))
    ids: list[str] = form["_ids"]
    action = form.get("action")
    if not ids or action not in ("read", "archive"):
        return _redirect(back, Flash("error", ctx.t("bulk_none")))
    done, problems = 0, []
    pool = ctx.svc.pool
    for raw in ids[:200]:
        try:
            cid = uuid.UUID(raw)
            if action == "read":
                await get_overview(pool=pool, caller=caller, correspondence_id=cid)
                await mark_as_read(pool=pool, caller=caller, correspondence_id=cid)
            else:
                await archive(pool=pool, caller=caller, correspondence_id=cid)
            done += 1
        except ApiError as exc:
            if exc.code == correspondence_errors.ALREADY_READ.code:
                done += 1
            else:
                problems.append(exc.message)
        except ValueError:
            problems.append(correspondence_errors.NOT_FOUND.message)
    text = ctx.t("bulk_done").format(done=done, total=len(ids[:200]))
    details = sorted(set(problems))
    return _redirect(back, Flash("error" if problems else "ok", text, details))


@router.get("/inbox/{cid}")
async def message(cid: str, ctx: Ctx) -> Response:
    caller = ctx.require(READ)
    correspondence_id = _uuid(cid, ctx)
    pool = ctx.svc.pool
    # The content first: it is for recipients only (403 for anyone else) and records Fetched and Read.
    body = await get_content(pool=pool, caller=caller, correspondence_id=correspondence_id)
    overview = await get_overview(pool=pool, caller=caller, correspondence_id=correspondence_id)
    return await pages.message(ctx, correspondence_id, body, overview)


@router.post("/inbox/{cid}/forward")
async def forward_message(cid: str, form: Form, ctx: Ctx) -> Response:
    """The API's forward (the same use case and rules): an address and an optional note."""
    caller = ctx.require(READ)
    _check_csrf(ctx, form)
    correspondence_id = _uuid(cid, ctx)
    here = f"/inbox/{correspondence_id}"
    address = str(form.get("forward_to") or "").strip()
    try:
        await forward(
            pool=ctx.svc.pool,
            caller=caller,
            correspondence_id=correspondence_id,
            forward_to=address,
            forwarding_text=form.get("forwarding_text") or None,
        )
    except ApiError as exc:
        if exc.status in (403, 404):
            raise
        return _redirect(here, Flash("error", exc.message))
    ctx.svc.wake_worker()
    return _redirect(here, Flash("ok", ctx.t("done_forward").format(address=address)))


_ACTIONS: dict[str, Callable[..., Awaitable[uuid.UUID]]] = {
    "confirm": confirm,
    "archive": archive,
    "delete": purge,
}


@router.post("/inbox/{cid}/{action}")
async def message_action(cid: str, action: str, form: Form, ctx: Ctx) -> Response:
    caller = ctx.require(READ)
    _check_csrf(ctx, form)
    correspondence_id = _uuid(cid, ctx)
    use_case = _ACTIONS.get(action)
    if use_case is None:
        raise WebError(404, ctx.t("not_found"))
    if action == "delete":
        # The API's purge lets the sender purge too; from the inbox only the recipient may.
        await resolve(ctx.svc.pool, caller, correspondence_id, allow=("recipient",))
    here = f"/inbox/{correspondence_id}"
    try:
        await use_case(pool=ctx.svc.pool, caller=caller, correspondence_id=correspondence_id)
    except ApiError as exc:
        if exc.status in (403, 404):
            raise
        return _redirect(here, Flash("error", exc.message))
    done = Flash("ok", ctx.t(f"done_{action}"))
    return _redirect(here if action == "confirm" else "/inbox", done)


@router.get("/inbox/{cid}/attachments.zip")
async def download_all(cid: str, ctx: Ctx) -> Response:
    caller = ctx.require(READ)
    if not ctx.svc.settings.download_all_enabled:
        raise WebError(404, ctx.t("not_found"))
    found = await recipient_download_all(
        pool=ctx.svc.pool,
        blobs=ctx.svc.blob_store(),
        caller=caller,
        correspondence_id=_uuid(cid, ctx),
        max_bytes=ctx.svc.settings.download_all_max_bytes,
    )
    headers = {
        "Content-Disposition": zip_content_disposition(found.file_name),
        "Content-Length": str(found.size),
        "Content-Security-Policy": "sandbox",
    }
    return StreamingResponse(found.stream(), media_type="application/zip", headers=headers)


@router.get("/inbox/{cid}/attachments/{aid}")
async def download(cid: str, aid: str, ctx: Ctx) -> Response:
    caller = ctx.require(READ)
    found = await recipient_download(
        pool=ctx.svc.pool,
        caller=caller,
        correspondence_id=_uuid(cid, ctx),
        attachment_id=_uuid(aid, ctx),
    )
    headers = {
        "Content-Disposition": content_disposition(found.file_name),
        "Content-Length": str(found.size),
        # A sender's file is never a page of this site: no script, no same-origin access.
        "Content-Security-Policy": "sandbox",
    }
    blobs = ctx.svc.blob_store()
    return StreamingResponse(blobs.get(found.key), media_type=download_type(found.file_name), headers=headers)


# --- sent ------------------------------------------------------------------------------------------


@router.get("/sent")
async def sent(ctx: Ctx) -> Response:
    return await pages.sent(ctx)


@router.get("/batches")
async def batches(ctx: Ctx) -> Response:
    return await pages.batches(ctx)


@router.post("/batches/{bid}/cancel")
async def cancel_batch_page(bid: str, form: Form, ctx: Ctx) -> Response:
    caller = ctx.require()
    _check_csrf(ctx, form)
    batch_id = _uuid(bid, ctx)
    if not caller.is_sender:
        raise WebError(403, ctx.t("sent_needs_org"))
    try:
        await cancel_batch(pool=ctx.svc.pool, caller=caller, batch_id=batch_id)
    except ApiError as exc:
        return _redirect("/batches", Flash("error", exc.message))
    return _redirect("/batches", Flash("ok", ctx.t("batch_cancelled")))


@router.get("/sent/{cid}")
async def sent_item(cid: str, ctx: Ctx) -> Response:
    caller = ctx.require()
    correspondence_id = _uuid(cid, ctx)
    pool = ctx.svc.pool
    access = await resolve(pool, caller, correspondence_id, allow=("sender",))
    details = await get_details(pool=pool, caller=caller, correspondence_id=correspondence_id)
    orders, deliveries = await notification_repo.orders_with_deliveries(pool, correspondence_id)
    events = await events_repo.events_of_correspondence(pool, correspondence_id)
    return await pages.sent_item(ctx, access.row, details, orders, deliveries, events)


@router.post("/sent/pause")
async def pause_resource(form: Form, ctx: Ctx) -> Response:
    """Pause or resume one of the organisation's resources (the API's use case and rules)."""
    caller = ctx.require()
    _check_csrf(ctx, form)
    resource_id = str(form.get("resource") or "")
    action = form.get("action")
    if action not in ("pause", "resume"):
        raise WebError(404, ctx.t("not_found"))
    await set_paused(
        pool=ctx.svc.pool,
        resources=ctx.svc.resources,
        caller=caller,
        resource_id=resource_id,
        paused=action == "pause",
    )
    if action == "resume":
        ctx.svc.wake_worker()
    return _redirect("/sent?" + urlencode({"resource": resource_id}), Flash("ok", ctx.t(f"done_{action}")))


@router.get("/sent/{cid}/recall")
async def recall_confirm(cid: str, ctx: Ctx) -> Response:
    """The confirm step: a recall is only made by the form this page shows."""
    caller = ctx.require()
    access = await resolve(ctx.svc.pool, caller, _uuid(cid, ctx), allow=("sender",))
    return pages.recall_confirm(ctx, access.row)


@router.post("/sent/{cid}/recall")
async def recall_message(cid: str, form: Form, ctx: Ctx) -> Response:
    caller = ctx.require()
    _check_csrf(ctx, form)
    correspondence_id = _uuid(cid, ctx)
    outcome = await recall_correspondence(
        pool=ctx.svc.pool, caller=caller, correspondence_id=correspondence_id
    )
    text = ctx.t("done_recall").format(
        purged=outcome.purged,
        notifications=outcome.notifications_cancelled,
        reminders=outcome.reminders_cancelled,
    )
    return _redirect(f"/sent/{correspondence_id}", Flash("ok", text))
