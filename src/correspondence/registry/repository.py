"""Every SQL statement of the registry slice."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class Resource:
    resource_id: str
    owner_org: str
    title: str | None
    resource_type: str
    confidential: str  # NotConfidential | Confidential | ExplicitlyDelegated
    min_auth_level: int


async def get_resource(conn: asyncpg.Connection | asyncpg.Pool, resource_id: str) -> Resource | None:
    row = await conn.fetchrow(
        "SELECT resource_id, owner_org, title, resource_type, confidential, min_auth_level "
        "FROM resources WHERE resource_id = $1",
        resource_id,
    )
    return Resource(**dict(row)) if row else None


async def min_auth_levels(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    rows = await conn.fetch("SELECT resource_id, min_auth_level FROM resources")
    return {r["resource_id"]: int(r["min_auth_level"]) for r in rows}


async def upsert_resource(
    conn: asyncpg.Connection,
    *,
    resource_id: str,
    owner_org: str,
    title: str | None,
    resource_type: str,
    confidential: str,
    min_auth_level: int,
) -> None:
    await conn.execute(
        """INSERT INTO resources (resource_id, owner_org, title, resource_type, confidential, min_auth_level)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (resource_id) DO UPDATE SET owner_org = EXCLUDED.owner_org,
             title = COALESCE(EXCLUDED.title, resources.title), resource_type = EXCLUDED.resource_type,
             confidential = EXCLUDED.confidential, min_auth_level = EXCLUDED.min_auth_level""",
        resource_id,
        owner_org,
        title,
        resource_type,
        confidential,
        min_auth_level,
    )


async def set_contact(
    conn: asyncpg.Connection,
    *,
    party: str,
    email: str | None,
    mobile: str | None,
    reserved: bool | None,
    clear_email: bool = False,
    clear_mobile: bool = False,
) -> None:
    await conn.execute(
        """INSERT INTO contacts (party, email, mobile, reserved) VALUES ($1, $2, $3, COALESCE($4, false))
           ON CONFLICT (party) DO UPDATE SET
             email = CASE WHEN $5 THEN NULL ELSE COALESCE(EXCLUDED.email, contacts.email) END,
             mobile = CASE WHEN $6 THEN NULL ELSE COALESCE(EXCLUDED.mobile, contacts.mobile) END,
             reserved = COALESCE($4, contacts.reserved), updated = now()""",
        party,
        email,
        mobile,
        reserved,
        clear_email,
        clear_mobile,
    )


async def set_party_name(conn: asyncpg.Connection, *, party: str, name: str) -> None:
    await conn.execute(
        "INSERT INTO parties (party, name) VALUES ($1, $2) ON CONFLICT (party) DO UPDATE SET name = $2",
        party,
        name,
    )


async def grant_access(
    conn: asyncpg.Connection, *, person: str, party: str, confidential: bool = False
) -> None:
    """A delegation, or a changed one: granting again sets whether it includes confidential post."""
    await conn.execute(
        """INSERT INTO delegations (person, party, confidential) VALUES ($1, $2, $3)
           ON CONFLICT (person, party) DO UPDATE SET confidential = EXCLUDED.confidential""",
        person,
        party,
        confidential,
    )


async def revoke_access(conn: asyncpg.Connection, *, person: str, party: str) -> bool:
    result: str = await conn.execute(
        "DELETE FROM delegations WHERE person = $1 AND party = $2", person, party
    )
    return result.endswith(" 1")
