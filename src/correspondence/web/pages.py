"""What each page shows: reads through the use cases and the slice's repository, then a template.

Kept apart from endpoints.py so routes stay thin: a route checks the form and calls a use case; the
page functions here turn use-case results into what the templates need.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from correspondence.auth import scopes
from correspondence.auth.caller import Caller
from correspondence.batch.use_cases.view import list_batches
from correspondence.correspondence import errors as correspondence_errors
from correspondence.correspondence import repository as correspondence_repo
from correspondence.correspondence.schemas import CHANNEL_NAMES, STATUS_NAMES
from correspondence.correspondence.use_cases.access import acting_for, caller_party
from correspondence.correspondence.use_cases.view import RECIPIENT_NAME
from correspondence.kit import clock
from correspondence.kit.text import ORG_URN, PERSON_URN, is_valid_org_number, strip_resource_prefix
from correspondence.recall.use_cases.pause import resource_state
from correspondence.services import Services
from correspondence.web import repository as repo
from correspondence.web import static
from correspondence.web.markdown import is_safe_url, render_markdown
from correspondence.web.session import (
    FLASH_COOKIE,
    LANG_COOKIE,
    PARTY_COOKIE,
    SIGNIN_COOKIE,
    csrf_token,
    new_signin_token,
    set_cookie,
)
from correspondence.web.texts import STATUS_LABELS, TEXTS, pick_language

PAGE_SIZE = 25
ORDER_STATUS = ("Success", "MissingContact", "Failure")
# Filters a recipient can pick: what a recipient's list may hold (search.py hides the rest).
INBOX_STATUSES = ("Published", "Read", "Confirmed", "Archived", "Reserved")
_WORD = re.compile(r"\w+")
# Security headers of every page: nothing but this origin's own files, no framing.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

try:
    _ZONE: Any = ZoneInfo("Europe/Oslo")
except ZoneInfoNotFoundError:  # a machine without tzdata shows UTC
    _ZONE = UTC


class SignInRequired(Exception):
    def __init__(self, expired: bool) -> None:
        super().__init__("sign-in required")
        self.expired = expired


class WebError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Flash:
    kind: str  # ok | error
    text: str
    details: list[str] = field(default_factory=list)


@dataclass
class Context:
    request: Request
    svc: Services
    lang: str
    token: str | None  # the session token, when it is valid
    caller: Caller | None
    had_cookie: bool

    def t(self, key: str) -> str:
        return TEXTS[self.lang][key]

    def require(self, scope: str | None = None) -> Caller:
        if self.caller is None:
            raise SignInRequired(expired=self.had_cookie)
        if scope is not None and scope not in self.caller.scopes:
            raise WebError(403, f"The token must carry the scope {scope}.")
        return self.caller


def language(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


# --- rendering ---------------------------------------------------------------------------------------


def _local(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(_ZONE)


def _format_time(value: datetime | str | None, lang: str, with_time: bool = True) -> Markup:
    local = _local(value)
    if local is None:
        return Markup("")
    if lang == "nb":
        text = local.strftime("%d.%m.%Y" + (" kl. %H:%M" if with_time else ""))
    else:
        text = local.strftime("%Y-%m-%d" + (" %H:%M" if with_time else ""))
    return Markup('<time datetime="{}">{}</time>').format(local.isoformat(), text)


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(ctx: Context, template: str, http_status: int = 200, **values: Any) -> Response:
    lang = ctx.lang
    flash = _take_flash(ctx.request)
    here = ctx.request.url.path + (f"?{ctx.request.url.query}" if ctx.request.url.query else "")
    html = _env.get_template(template).render(
        t=TEXTS[lang],
        lang=lang,
        status_label=lambda name: STATUS_LABELS[lang].get(name, name),
        when=lambda v, with_time=True: _format_time(v, lang, with_time),
        caller=ctx.caller,
        who=_who(ctx.caller),
        csrf=csrf_token(ctx.token) if ctx.token else "",
        here=here,
        here_quoted=urlencode({"next": here}),
        flash=flash,
        static_version=static.VERSION,
        **values,
    )
    response = HTMLResponse(html, status_code=http_status, headers=_PAGE_HEADERS)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _who(caller: Caller | None) -> str | None:
    if caller is None:
        return None
    if caller.pid is not None:
        return caller.pid
    return caller.org


def set_flash(response: Response, flash: Flash) -> None:
    payload = orjson.dumps({"k": flash.kind, "t": flash.text, "d": flash.details[:10]})
    value = base64.urlsafe_b64encode(payload).decode()
    response.set_cookie(FLASH_COOKIE, value, max_age=60, path="/", httponly=True, samesite="lax")


def _take_flash(request: Request) -> Flash | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(value.encode()))
        return Flash(str(data["k"]), str(data["t"]), [str(d) for d in data.get("d", [])])
    except (ValueError, KeyError, TypeError):
        return None


def error_page(request: Request, status: int, message: str) -> Response:
    lang = language(request)
    ctx = Context(request, request.app.state.services, lang, None, None, False)
    return render(ctx, "error.html", http_status=status, status_code=status, message=message)


# --- sign-in -----------------------------------------------------------------------------------------


def signin(ctx: Context, *, next_path: str, error: str | None = None, status: int = 200) -> Response:
    token = ctx.request.cookies.get(SIGNIN_COOKIE) or new_signin_token()
    response = render(
        ctx,
        "signin.html",
        http_status=status,
        dev=ctx.svc.dev_issuer is not None,
        signin_csrf=token,
        next_path=next_path,
        error=error,
    )
    set_cookie(ctx.request, response, SIGNIN_COOKIE, token)
    return response


# --- inbox -------------------------------------------------------------------------------------------


def party_of(ctx: Context) -> str | None:
    """The party whose inbox is shown: the organisation chosen (checked on every page), else the
    caller itself."""
    chosen = ctx.request.cookies.get(PARTY_COOKIE)
    if chosen and chosen.startswith(ORG_URN):
        return chosen
    return caller_party(ctx.caller) if ctx.caller else None


def _date(value: str | None, ctx: Context) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    # Years 1 and 9999 are refused too: their day boundaries in Oslo lie outside what a timestamp holds.
    if day is None or not 1 < day.year < 9999:
        raise WebError(400, f"The value '{value}' is not valid.")
    return day


def text_query(text: str | None) -> str | None:
    """A tsquery from the words of free text: every word must match, as a word or a word's start.
    Only word characters reach it, so no user text is parsed as tsquery syntax."""
    words = _WORD.findall((text or "").lower())[:8]
    return " & ".join(f"'{w}':*" for w in words) if words else None


def _filters(ctx: Context) -> tuple[repo.InboxFilter, dict[str, str]]:
    q = ctx.request.query_params
    chosen = {k: q.get(k, "").strip() for k in ("q", "sender", "resource", "status", "from", "to", "unread")}
    status_name = chosen["status"]
    status: int | None = None
    if status_name == "any":
        status = -1
    elif status_name in INBOX_STATUSES:
        status = STATUS_NAMES.index(status_name)
    from_day = _date(chosen["from"], ctx)
    to_day = _date(chosen["to"], ctx)
    if from_day and to_day and from_day > to_day:
        raise correspondence_errors.FROM_AFTER_TO()
    sender = chosen["sender"]
    resource = chosen["resource"]
    f = repo.InboxFilter(
        text=text_query(chosen["q"]),
        sender=sender if is_valid_org_number(sender) else None,
        resource=strip_resource_prefix(resource)[:255] if resource and "\x00" not in resource else None,
        status=status,
        from_time=datetime.combine(from_day, time(), _ZONE) if from_day else None,
        to_time=datetime.combine(to_day + timedelta(days=1), time(), _ZONE) if to_day else None,
        unread=chosen["unread"] == "1",
    )
    return f, chosen


async def inbox(ctx: Context) -> Response:
    """The recipient's list: what the caller could open (use_cases/access.py), so resources above
    the caller's authentication level, and confidential correspondence for a person whose
    delegation does not include it, are left out."""
    caller = ctx.require(scopes.READ)
    pool = ctx.svc.pool
    party = party_of(ctx)
    if party is None:
        raise correspondence_errors.CALLER_UNKNOWN()
    acting = await acting_for(pool, caller, party)
    if acting is None:
        raise correspondence_errors.NO_ACCESS()
    f, chosen = _filters(ctx)
    f = replace(f, hide_confidential=acting.delegated and not acting.confidential)
    q = ctx.request.query_params
    before = repo.Cursor.decode(q.get("before"))
    after = None if before else repo.Cursor.decode(q.get("after"))
    cache = ctx.svc.resources
    restricted = await cache.above_level(pool, caller.auth_level)

    async def load(f: repo.InboxFilter) -> tuple[list[asyncpg.Record], int, list[asyncpg.Record]]:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await repo.plan_per_query(conn)
            if f.text is not None:
                matching = await repo.matching_contents(conn, f.text)
                if matching is not None:
                    f = replace(f, content_ids=matching)
            rows = await repo.inbox_page(conn, party, f, before=before, after=after, limit=PAGE_SIZE + 1)
            total = await repo.inbox_count(conn, party, f)
            resources = await repo.inbox_resources(conn, party)
        return rows, total, [r for r in resources if r["resource_id"] not in f.hidden_resources]

    rows, total, resources = await load(replace(f, hidden_resources=restricted))
    if await cache.learn(pool, {r["resource_id"] for r in rows} | {r["resource_id"] for r in resources}):
        # A resource registered after the levels were read: list again if it is one to leave out.
        again = await cache.above_level(pool, caller.auth_level)
        if again != restricted:
            rows, total, resources = await load(replace(f, hidden_resources=again))
    more = len(rows) > PAGE_SIZE
    if after is not None:
        rows = rows[1:] if more else rows
        has_newer, has_older = more, True
    else:
        rows = rows[:PAGE_SIZE]
        has_newer, has_older = before is not None, more
    delegations = await repo.delegations_of(pool, PERSON_URN + caller.pid) if caller.pid else []
    name = None
    if any(RECIPIENT_NAME in r["message_title"] + r["message_summary"] for r in rows):
        name = await repo.party_name(pool, party) or party.rsplit(":", 1)[-1]
    filters = {k: v for k, v in chosen.items() if v}

    def link(**cursor: str) -> str:
        return "/inbox?" + urlencode({**filters, **cursor})

    senders = sorted(
        {(r["owner_org"], r["owner_name"] or r["owner_org"]) for r in resources if r["owner_org"]},
        key=lambda s: s[1].lower(),
    )
    return render(
        ctx,
        "inbox.html",
        items=[_inbox_item(r, name) for r in rows],
        total=total,
        capped=total > repo.COUNT_CAP,
        cap=repo.COUNT_CAP,
        newer=link(after=repo.Cursor(rows[0]["requested_publish_time"], rows[0]["id"]).encode())
        if has_newer and rows
        else None,
        older=link(before=repo.Cursor(rows[-1]["requested_publish_time"], rows[-1]["id"]).encode())
        if has_older and rows
        else None,
        first=link() if (before or after) else None,
        chosen=chosen,
        statuses=INBOX_STATUSES,
        senders=senders,
        resources=resources,
        party=party,
        own_party=caller_party(caller),
        delegations=delegations,
    )


def _inbox_item(row: asyncpg.Record, recipient_name: str | None) -> dict[str, Any]:
    title, summary = row["message_title"], row["message_summary"]
    if recipient_name is not None:
        title = title.replace(RECIPIENT_NAME, recipient_name)
        summary = summary.replace(RECIPIENT_NAME, recipient_name)
    return {
        "id": str(row["id"]),
        "unread": row["read_at"] is None,
        "sender": row["message_sender"] or row["sender_name"] or row["service_owner_id"],
        "title": title,
        "summary": summary,
        "date": row["published"] or row["requested_publish_time"],
        "due": row["due_date_time"],
        "status": STATUS_NAMES[row["status"]],
        "needs_confirmation": row["is_confirmation_needed"] and row["confirmed_at"] is None,
    }


def _offers_download_all(ctx: Context, attachments: list[dict[str, Any]]) -> bool:
    """A zip link for two or more attachments, when all of them can be downloaded."""
    enabled = ctx.svc.settings.download_all_enabled
    return enabled and len(attachments) >= 2 and all(a["status"] == "Published" for a in attachments)


async def message(ctx: Context, cid: uuid.UUID, body: str, overview: dict[str, Any]) -> Response:
    pool = ctx.svc.pool
    row = await correspondence_repo.get_correspondence(pool, cid)
    assert row is not None  # the use cases above found it
    sender = overview["messageSender"] or await repo.party_name(pool, ORG_URN + row["service_owner_id"])
    content = overview["content"]
    return render(
        ctx,
        "message.html",
        cid=str(cid),
        title=content["messageTitle"],
        summary=content["messageSummary"],
        body=Markup(render_markdown(body)),
        sender=sender or row["service_owner_id"],
        recipient=overview["recipient"],
        published=overview["published"],
        due=overview["dueDateTime"],
        status=overview["status"],
        attachments=content["attachments"],
        download_all=_offers_download_all(ctx, content["attachments"]),
        reply_options=[o for o in overview["replyOptions"] if is_safe_url(o.get("linkURL"))],
        references=overview["externalReferences"],
        needs_confirmation=bool(row["is_confirmation_needed"]) and row["confirmed_at"] is None,
        confirmed_at=row["confirmed_at"],
        archived=overview["status"] == "Archived",
        allow_forwarding=bool(row["allow_forwarding"]),
    )


# --- sent --------------------------------------------------------------------------------------------


async def sent(ctx: Context) -> Response:
    caller = ctx.require()
    if caller.org is None:
        raise WebError(403, ctx.t("sent_needs_org"))
    if not caller.is_sender:
        needed = scopes.WRITE if caller.kind == "altinn" else f"{scopes.SERVICE_OWNER} and {scopes.WRITE}"
        raise WebError(403, f"The token must carry the scope {needed}.")
    pool = ctx.svc.pool
    owned = await repo.owned_resources(pool, caller.org)
    chosen = ctx.request.query_params.get("resource") or (owned[0]["resource_id"] if owned else None)
    if chosen is not None and chosen not in {r["resource_id"] for r in owned}:
        raise correspondence_errors.NO_ACCESS()
    before = repo.Cursor.decode(ctx.request.query_params.get("before"))
    rows: list[asyncpg.Record] = []
    pause: dict[str, Any] | None = None
    if chosen is not None:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await repo.plan_per_query(conn)
            rows = await repo.sent_page(conn, caller.org, chosen, before=before, limit=PAGE_SIZE + 1)
        pause = await resource_state(pool, caller.org, chosen, clock.now())
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    older = None
    if more and rows:
        cursor = repo.Cursor(rows[-1]["requested_publish_time"], rows[-1]["id"]).encode()
        older = "/sent?" + urlencode({"resource": chosen or "", "before": cursor})
    return render(
        ctx,
        "sent.html",
        resources=owned,
        chosen=chosen,
        items=[_sent_item(r) for r in rows],
        pause=pause,
        older=older,
        first="/sent?" + urlencode({"resource": chosen}) if before and chosen else None,
    )


async def batches(ctx: Context) -> Response:
    """The owner's batches with their progress; refreshes itself while one is being sent."""
    caller = ctx.require()
    if caller.org is None:
        raise WebError(403, ctx.t("sent_needs_org"))
    if not caller.is_sender:
        needed = scopes.WRITE if caller.kind == "altinn" else f"{scopes.SERVICE_OWNER} and {scopes.WRITE}"
        raise WebError(403, f"The token must carry the scope {needed}.")
    owned = await repo.owned_resources(ctx.svc.pool, caller.org)
    chosen = ctx.request.query_params.get("resource") or None
    if chosen is not None and chosen not in {r["resource_id"] for r in owned}:
        raise correspondence_errors.NO_ACCESS()
    found = await list_batches(
        pool=ctx.svc.pool, resources=ctx.svc.resources, caller=caller, resource_id=chosen, limit=100, offset=0
    )
    items = found["batches"]
    for item in items:
        counts = item["counts"]
        done = counts["published"] + counts["failed"] + counts["purged"]
        item["percent"] = done * 100 // counts["recipients"] if counts["recipients"] else 0
    return render(
        ctx,
        "batches.html",
        resources=owned,
        chosen=chosen,
        batches=items,
        in_progress=any(b["status"] == "Committed" for b in items),
    )


def _sent_item(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "recipient": row["recipient"],
        "recipient_name": row["recipient_name"],
        "reference": row["senders_reference"],
        "date": row["published"] or row["requested_publish_time"],
        "status": STATUS_NAMES[row["status"]],
        "status_changed": row["status_changed"],
        "read_at": row["read_at"],
        "confirmed_at": row["confirmed_at"],
        "orders": [ORDER_STATUS[s] if 0 <= s < len(ORDER_STATUS) else str(s) for s in row["order_statuses"]],
    }


def recall_confirm(ctx: Context, row: asyncpg.Record) -> Response:
    """The confirm step of a recall: what it will do to this correspondence."""
    return render(
        ctx,
        "recall_confirm.html",
        cid=str(row["id"]),
        reference=row["senders_reference"],
        resource_id=row["resource_id"],
        recipient=row["recipient"],
        status=STATUS_NAMES[row["status"]],
        published=row["published"] is not None,
    )


async def sent_item(
    ctx: Context,
    row: asyncpg.Record,
    details: dict[str, Any],
    orders: list[asyncpg.Record],
    deliveries: list[asyncpg.Record],
    events: list[asyncpg.Record],
) -> Response:
    by_id = {n["id"]: n for n in details["notifications"]}
    order_views = [
        {
            "id": str(o["id"]),
            "reminder": o["is_reminder"],
            "channel": CHANNEL_NAMES[o["channel"]],
            "address": ", ".join(a for a in (o["email_address"], o["mobile_number"]) if a),
            "status": ORDER_STATUS[o["status"]] if 0 <= o["status"] < len(ORDER_STATUS) else str(o["status"]),
            "processing": o["processing_status"],
            "send_time": o["requested_send_time"],
            "api": by_id.get(str(o["id"])),
        }
        for o in orders
    ]
    return render(
        ctx,
        "sent_item.html",
        cid=details["correspondenceId"],
        d=details,
        can_recall=row["status"]
        not in (correspondence_repo.PURGED_BY_RECIPIENT, correspondence_repo.PURGED_BY_ALTINN),
        recipient_name=await repo.party_name(ctx.svc.pool, row["recipient"]),
        orders=order_views,
        deliveries=[
            {
                "channel": d["channel"],
                "address": d["address"],
                "status": d["status"],
                "error": d["last_error"],
                "at": d["updated"],
            }
            for d in deliveries
        ],
        events=[
            {
                "type": e["type"],
                "at": e["time"],
                "subscribers": e["deliveries"],
                "delivered": e["delivered"],
                "failed": e["failed"],
            }
            for e in events
        ],
    )
