"""The `correspondence` command: serve, worker, migrate, token and the registry verbs."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncpg
import typer
from pydantic import ValidationError

from correspondence.config import Settings, get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
resource_app = typer.Typer(
    no_args_is_help=True, help="The resource registry (resource → owning organisation)."
)
contact_app = typer.Typer(no_args_is_help=True, help="The contact registry (e-mail, mobile, reservation).")
access_app = typer.Typer(no_args_is_help=True, help="Delegations: a person may act for an organisation.")
party_app = typer.Typer(no_args_is_help=True, help="The party registry (display names).")
batch_app = typer.Typer(no_args_is_help=True, help="Batches: one correspondence to many recipients.")
app.add_typer(resource_app, name="resource")
app.add_typer(contact_app, name="contact")
app.add_typer(access_app, name="access")
app.add_typer(party_app, name="party")
app.add_typer(batch_app, name="batch")
limits_app = typer.Typer(
    no_args_is_help=True, help="Per-owner limits: requests per minute, notifications per day."
)
sandbox_app = typer.Typer(no_args_is_help=True, help="The sandbox's reserved addresses and parties.")
app.add_typer(limits_app, name="limits")
app.add_typer(sandbox_app, name="sandbox")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        typer.echo(
            "Invalid configuration (CORRESPONDENCE_* environment variables):\n" + "\n".join(lines), err=True
        )
        raise typer.Exit(2) from None


def _database_url(settings: Settings, migrate: bool = True) -> str:
    from correspondence.kit.db import resolve_database_url
    from correspondence.kit.migrate import upgrade

    url = resolve_database_url(settings.database_url, settings.data_dir)
    if migrate:
        upgrade(url)
    return url


def _with_connection(fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    settings = _settings()
    url = _database_url(settings)

    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the job worker in-process.")
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="API processes sharing the port (more than one: the parent runs the job worker).",
        ),
    ] = 1,
) -> None:
    """Run the API and the job worker on the configured (or embedded) database."""
    import uvicorn

    from correspondence.app import create_app
    from correspondence.kit import logs

    settings = _settings()
    logs.configure(settings.log_level)
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    refusal = settings.development_refusal()
    if refusal is not None:
        typer.echo(f"correspondence: refusing to start: {refusal}", err=True)
        raise typer.Exit(2)
    url = _database_url(settings)
    typer.echo(
        f"correspondence: {settings.mode} mode, listening on http://{settings.host}:{settings.port}"
        + ("" if settings.database_url else f" (embedded PostgreSQL under {settings.data_dir})")
        + (f" with {workers} API processes" if workers > 1 else ""),
        err=True,
    )
    if workers > 1:
        from correspondence.processes import serve_processes

        # The embedded PostgreSQL (if any) was started here and stops when this process exits.
        serve_processes(settings, url, processes=workers, run_worker=worker)
        return
    application = create_app(settings, url, run_worker=worker)
    # uvicorn re-raises SIGTERM after a graceful shutdown; exiting normally instead lets the
    # embedded PostgreSQL stop when its last user is gone.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


@app.command("worker")
def worker_command() -> None:
    """Run job workers only (scale these sideways)."""
    from correspondence.kit import logs
    from correspondence.kit.jobs import Worker
    from correspondence.processes import install_stop_signals, run_worker

    settings = _settings()
    logs.configure(settings.log_level)
    url = _database_url(settings)

    def started(worker: Worker) -> None:
        # SIGTERM: finish the running batch (at most worker_shutdown_seconds), release the rest.
        install_stop_signals(worker)
        typer.echo("correspondence: worker running", err=True)

    import uvloop  # uvicorn[standard] brings it; the API runs on it too

    uvloop.run(run_worker(settings, url, started=started))


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    settings = _settings()
    _database_url(settings, migrate=True)
    typer.echo("migrations applied")


@app.command()
def token(
    org: Annotated[
        str | None, typer.Option(help="Organisation number (service owner or recipient org).")
    ] = None,
    pid: Annotated[str | None, typer.Option(help="National identity number of a person.")] = None,
    scope: Annotated[str, typer.Option(help="Space-separated scopes.")] = "altinn:correspondence.write",
    lifetime: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
    auth_level: Annotated[
        int, typer.Option(min=0, max=4, help="Authentication level (urn:altinn:authlevel), 0-4.")
    ] = 3,
) -> None:
    """Print a token from the development issuer."""
    from correspondence.auth.tokens import DevIssuer
    from correspondence.kit.text import is_national_identity_number, is_valid_org_number

    settings = _settings()
    if not settings.dev_issuer_enabled:
        typer.echo("The development issuer is off in production mode.", err=True)
        raise typer.Exit(2)
    if (org is None) == (pid is None):
        typer.echo("Give exactly one of --org or --pid.", err=True)
        raise typer.Exit(2)
    if org is not None and not is_valid_org_number(org.rsplit(":", 1)[-1]):
        typer.echo(f"Not an organisation number (9 digits): {org}", err=True)
        raise typer.Exit(2)
    if pid is not None and not is_national_identity_number(pid):
        typer.echo(f"Not a valid national identity number: {pid}", err=True)
        raise typer.Exit(2)
    issuer = DevIssuer(settings.dev_issuer, settings.data_dir, settings.dev_token_lifetime_seconds)
    typer.echo(
        issuer.mint(
            scope=scope,
            org=org.rsplit(":", 1)[-1] if org else None,
            pid=pid,
            auth_level=auth_level,
            lifetime_seconds=lifetime,
        )
    )


@resource_app.command("add")
def resource_add(
    resource_id: Annotated[str, typer.Argument(help="Resource id, with or without urn:altinn:resource:.")],
    owner: Annotated[str, typer.Option(help="Organisation number of the owning service owner.")],
    title: Annotated[str | None, typer.Option(help="Title shown to recipients.")] = None,
    resource_type: Annotated[str, typer.Option("--type", help="CorrespondenceService or AltinnApp.")] = (
        "CorrespondenceService"
    ),
    confidential: Annotated[
        str, typer.Option(help="NotConfidential, Confidential or ExplicitlyDelegated.")
    ] = "NotConfidential",
    min_auth_level: Annotated[
        int, typer.Option(min=0, max=4, help="Minimum authentication level (0-4).")
    ] = 0,
) -> None:
    """Register a resource and the organisation that owns it."""
    from correspondence.kit.text import is_valid_org_number, is_valid_resource_id, strip_resource_prefix
    from correspondence.registry import repository

    owner_org = owner.rsplit(":", 1)[-1]
    if not is_valid_org_number(owner_org):
        typer.echo(f"Not an organisation number (9 digits): {owner}", err=True)
        raise typer.Exit(2)
    if not is_valid_resource_id(resource_id):
        typer.echo(f"Invalid resource id: {resource_id}", err=True)
        raise typer.Exit(2)
    if confidential not in ("NotConfidential", "Confidential", "ExplicitlyDelegated"):
        typer.echo("--confidential must be NotConfidential, Confidential or ExplicitlyDelegated", err=True)
        raise typer.Exit(2)
    rid = strip_resource_prefix(resource_id)

    async def run(conn: asyncpg.Connection) -> None:
        await repository.upsert_resource(
            conn,
            resource_id=rid,
            owner_org=owner_org,
            title=title,
            resource_type=resource_type,
            confidential=confidential,
            min_auth_level=min_auth_level,
        )

    _with_connection(run)
    typer.echo(f"resource {rid} owned by {owner_org}")


@resource_app.command("pause")
def resource_pause(
    resource_id: Annotated[str, typer.Argument(help="Resource id, with or without urn:altinn:resource:.")],
) -> None:
    """Pause a resource: nothing of it is published or notified until it is resumed."""
    from correspondence.kit import clock
    from correspondence.recall.use_cases.pause import pause_resource

    resource = _registered_resource(resource_id)
    changed = _with_connection(lambda conn: pause_resource(conn, resource, party=None, now=clock.now()))
    typer.echo(f"resource {resource.resource_id} {'paused' if changed else 'was paused already'}")


@resource_app.command("resume")
def resource_resume(
    resource_id: Annotated[str, typer.Argument(help="Resource id, with or without urn:altinn:resource:.")],
) -> None:
    """Resume a paused resource: everything due is published and notified now, once."""
    from correspondence.kit import clock
    from correspondence.recall.use_cases.pause import resume_resource

    resource = _registered_resource(resource_id)
    jobs = _with_connection(lambda conn: resume_resource(conn, resource, party=None, now=clock.now()))
    if jobs is None:
        typer.echo(f"resource {resource.resource_id} was not paused")
    else:
        typer.echo(f"resource {resource.resource_id} resumed ({jobs} jobs enqueued for what waited)")


def _registered_resource(resource_id: str) -> Any:
    """The registered resource, or exit 1 saying there is none."""
    from correspondence.recall.use_cases.resources import resource_key
    from correspondence.registry import repository

    key = resource_key(resource_id)
    resource = _with_connection(lambda conn: repository.get_resource(conn, key)) if key else None
    if resource is None:
        typer.echo(f"No such resource: {resource_id}", err=True)
        raise typer.Exit(1)
    return resource


def _instant(name: str, value: str | None) -> Any:
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        typer.echo(f"{name} is not an ISO 8601 time: {value}", err=True)
        raise typer.Exit(2) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@app.command()
def recall(
    correspondence_id: Annotated[
        str | None, typer.Argument(help="The correspondence to recall (or give --resource).")
    ] = None,
    resource: Annotated[
        str | None, typer.Option(help="Recall every correspondence of this resource.")
    ] = None,
    from_time: Annotated[
        str | None, typer.Option("--from", help="With --resource: requestedPublishTime after this.")
    ] = None,
    to_time: Annotated[
        str | None, typer.Option("--to", help="With --resource: requestedPublishTime before this.")
    ] = None,
    senders_reference: Annotated[
        str | None, typer.Option(help="With --resource: only this sendersReference.")
    ] = None,
) -> None:
    """Recall: purge what is not yet published, cancel notifications and reminders not yet sent."""
    import uuid

    from correspondence.kit import clock
    from correspondence.recall.use_cases.recall import (
        ResourceFilter,
        recall_correspondences,
        recall_resource_correspondences,
    )

    if (correspondence_id is None) == (resource is None):
        typer.echo("Give exactly one of CORRESPONDENCE_ID or --resource.", err=True)
        raise typer.Exit(2)
    if correspondence_id is not None:
        try:
            cid = uuid.UUID(correspondence_id)
        except ValueError:
            typer.echo(f"Not a correspondence id: {correspondence_id}", err=True)
            raise typer.Exit(2) from None
        outcome = _with_connection(
            lambda conn: recall_correspondences(conn, [cid], party=None, now=clock.now())
        )
        if outcome.correspondences == 0:
            typer.echo(f"No such correspondence: {cid}", err=True)
            raise typer.Exit(1)
    else:
        where = ResourceFilter(_instant("--from", from_time), _instant("--to", to_time), senders_reference)
        found = _registered_resource(resource or "")
        outcome = _with_connection(
            lambda conn: recall_resource_correspondences(
                conn,
                owner_org=found.owner_org,
                resource_id=found.resource_id,
                where=where,
                party=None,
                now=clock.now(),
            )
        )
    typer.echo(
        f"recalled {outcome.correspondences} correspondences: {outcome.purged} purged, "
        f"{outcome.already_purged} purged before, {outcome.published} published (kept), "
        f"{outcome.notifications_cancelled} notifications and "
        f"{outcome.reminders_cancelled} reminders cancelled"
    )


def _party(identifier: str) -> str:
    from correspondence.kit.text import party_urn

    urn = party_urn(identifier)
    if urn is None:
        typer.echo(f"Not an organisation number or a valid national identity number: {identifier}", err=True)
        raise typer.Exit(2)
    return urn


@contact_app.command("set")
def contact_set(
    party: Annotated[str, typer.Argument(help="Organisation number or national identity number.")],
    email: Annotated[str | None, typer.Option(help="E-mail address ('' clears it).")] = None,
    mobile: Annotated[
        str | None, typer.Option(help="Mobile number, e.g. +4799999999 ('' clears it).")
    ] = None,
    reserved: Annotated[
        bool | None, typer.Option("--reserved/--not-reserved", help="Reserved against digital mail.")
    ] = None,
) -> None:
    """Set a party's contact points and reservation, as the contact registry (KRR) would hold them."""
    from correspondence.kit.text import is_valid_email, is_valid_mobile, normalise_mobile
    from correspondence.registry import repository

    urn = _party(party)
    if email and not is_valid_email(email):
        typer.echo(f"Not a valid e-mail address: {email}", err=True)
        raise typer.Exit(2)
    if mobile and not is_valid_mobile(mobile):
        typer.echo(f"Not a valid mobile number (E.164, starting with + or 00): {mobile}", err=True)
        raise typer.Exit(2)

    async def run(conn: asyncpg.Connection) -> None:
        await repository.set_contact(
            conn,
            party=urn,
            email=email or None,
            mobile=normalise_mobile(mobile) if mobile else None,
            reserved=reserved,
            clear_email=email == "",
            clear_mobile=mobile == "",
        )

    _with_connection(run)
    typer.echo(f"contact for {urn} updated")


@party_app.command("set")
def party_set(
    party: Annotated[str, typer.Argument(help="Organisation number or national identity number.")],
    name: Annotated[str, typer.Option(help="Display name.")],
) -> None:
    """Set a party's display name."""
    from correspondence.registry import repository

    urn = _party(party)
    _with_connection(lambda conn: repository.set_party_name(conn, party=urn, name=name))
    typer.echo(f"name of {urn} set")


@access_app.command("grant")
def access_grant(
    person: Annotated[str, typer.Argument(help="National identity number of the person.")],
    party: Annotated[str, typer.Option("--party", help="Organisation number the person may act for.")],
    confidential: Annotated[
        bool,
        typer.Option(
            "--confidential/--not-confidential",
            help="Include the organisation's confidential correspondence (granting again changes it).",
        ),
    ] = False,
) -> None:
    """Let a person act for an organisation."""
    from correspondence.registry import repository

    person_urn = _party(person)
    party_urn = _party(party)
    if not person_urn.startswith("urn:altinn:person:") or not party_urn.startswith(
        "urn:altinn:organization:"
    ):
        typer.echo(
            "PERSON_ID must be a national identity number and --party an organisation number.", err=True
        )
        raise typer.Exit(2)
    _with_connection(
        lambda conn: repository.grant_access(
            conn, person=person_urn, party=party_urn, confidential=confidential
        )
    )
    suffix = ", confidential correspondence included" if confidential else ""
    typer.echo(f"{person_urn} may act for {party_urn}{suffix}")


@access_app.command("revoke")
def access_revoke(
    person: Annotated[str, typer.Argument(help="National identity number of the person.")],
    party: Annotated[str, typer.Option("--party", help="Organisation number.")],
) -> None:
    """Withdraw a delegation."""
    from correspondence.registry import repository

    person_urn, party_urn = _party(person), _party(party)
    removed = _with_connection(
        lambda conn: repository.revoke_access(conn, person=person_urn, party=party_urn)
    )
    typer.echo("revoked" if removed else "no such delegation")


def _batch_line(row: Any) -> str:
    from correspondence.batch.schemas import STATUS_NAMES

    return (
        f"{row['id']}  {STATUS_NAMES[row['status']]:<9}  {row['resource_id']}  owner {row['owner_org']}  "
        f"recipients {row['recipients']}  created {row['created_count']}  "
        f"published {row['published_count']}  failed {row['failed_count']}  notified {row['notified_count']}"
    )


def _batch_id(value: str) -> Any:
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        typer.echo(f"Not a batch id (a UUID): {value}", err=True)
        raise typer.Exit(2) from None


@batch_app.command("list")
def batch_list(
    resource: Annotated[str | None, typer.Option(help="Only this resource's batches.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this organisation's batches.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many, newest first.")] = 50,
) -> None:
    """List batches with their progress, newest first."""
    from correspondence.batch import repository
    from correspondence.kit.text import strip_resource_prefix

    rid = strip_resource_prefix(resource) if resource else None
    org = owner.rsplit(":", 1)[-1] if owner else None
    rows = _with_connection(lambda conn: repository.list_all(conn, org, rid, limit))
    for row in rows:
        typer.echo(_batch_line(row))
    if not rows:
        typer.echo("no batches")


@batch_app.command("show")
def batch_show(batch_id: Annotated[str, typer.Argument(help="The batch's id.")]) -> None:
    """Show a batch: state, counts, times, and recipients that could not be created."""
    from correspondence.batch import repository

    bid = _batch_id(batch_id)

    async def run(conn: asyncpg.Connection) -> Any:
        return await repository.get_batch(conn, bid), await repository.failures(conn, bid, 20)

    row, failures = _with_connection(run)
    if row is None:
        typer.echo(f"no batch {batch_id}", err=True)
        raise typer.Exit(1)
    typer.echo(_batch_line(row))
    typer.echo(f"  sendersReference {row['senders_reference']}  pages {row['pages']}")
    typer.echo(f"  purged {row['purged_count']}  notification failed {row['notify_failed_count']}")
    for label in ("created", "committed", "completed", "cancelled"):
        if row[label] is not None:
            typer.echo(f"  {label} {row[label].isoformat()}")
    for failure in failures:
        typer.echo(f"  not created: {failure['recipient']}: {failure['error']}")


@batch_app.command("cancel")
def batch_cancel(batch_id: Annotated[str, typer.Argument(help="The batch's id.")]) -> None:
    """Cancel an open batch (nothing of it is sent). A committed batch is stopped by recall."""
    from correspondence.batch.use_cases.cancel import cancel_open_batch
    from correspondence.kit.errors import ApiError

    bid = _batch_id(batch_id)
    try:
        _with_connection(lambda conn: cancel_open_batch(conn, bid))
    except ApiError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"batch {batch_id} cancelled")


@limits_app.command("show")
def limits_show(
    org: Annotated[str | None, typer.Option(help="Only this service owner (organisation number).")] = None,
) -> None:
    """The configured limits, and each owner's notifications ordered today."""
    from correspondence.kit import clock
    from correspondence.limits import repository
    from correspondence.limits.rules import day_of
    from correspondence.limits.setup import open_limits

    limits = open_limits(_settings())
    day = day_of(clock.now(), limits.zone)
    owner = org.rsplit(":", 1)[-1] if org else None

    def describe(value: int) -> str:
        return str(value) if value > 0 else "no limit"

    typer.echo(f"requests per minute (per API process): {describe(limits.rate.default)}")
    for who, n in sorted(limits.rate.overrides.items()):
        typer.echo(f"  {who}: {describe(n)}")
    typer.echo(f"notifications per day: {describe(limits.cap.default)}")
    for who, n in sorted(limits.cap.overrides.items()):
        typer.echo(f"  {who}: {describe(n)}")

    async def run(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await repository.ordered_on(conn, day)
        return rows

    rows = [r for r in _with_connection(run) if owner is None or r["owner_org"] == owner]
    typer.echo(f"ordered on {day.isoformat()} ({limits.zone.key}):")
    if not rows:
        typer.echo("  nothing")
    for r in rows:
        cap = limits.cap.for_owner(r["owner_org"])
        typer.echo(f"  {r['owner_org']}: {r['ordered']} of {describe(cap)}")


@limits_app.command("reset")
def limits_reset(
    org: Annotated[str, typer.Argument(help="Organisation number of the service owner.")],
) -> None:
    """Start an owner's count of notifications ordered today again from 0 (lifts the daily cap
    for the rest of the day up to the cap once more)."""
    from correspondence.kit import clock
    from correspondence.kit.text import is_valid_org_number
    from correspondence.limits import repository
    from correspondence.limits.rules import day_of
    from correspondence.limits.setup import open_limits

    owner = org.rsplit(":", 1)[-1]
    if not is_valid_org_number(owner):
        typer.echo(f"Not an organisation number (9 digits): {org}", err=True)
        raise typer.Exit(2)
    day = day_of(clock.now(), open_limits(_settings()).zone)
    removed = _with_connection(lambda conn: repository.reset(conn, owner, day))
    typer.echo(
        f"count of {owner} for {day.isoformat()} reset" if removed else f"{owner} ordered nothing today"
    )


@sandbox_app.command("show")
def sandbox_show() -> None:
    """The reserved e-mail addresses, mobile numbers and parties, and whether they act here."""
    from correspondence.sandbox.use_cases.describe import describe

    table = describe(enabled=_settings().sandbox_enabled)
    typer.echo("sandbox: " + ("on" if table["enabled"] else "off (these are ordinary values here)"))
    for kind in ("emails", "mobiles"):
        for item in table[kind]:
            typer.echo(f"  {item['address']:<52} {item['behaviour']}")
    for party in table["parties"]:
        number = party["organizationNumber"] or party["nationalIdentityNumber"]
        typer.echo(f"  {number:<52} {party['behaviour']}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
