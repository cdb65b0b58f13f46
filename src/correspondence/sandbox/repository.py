"""Every SQL statement of the sandbox slice: its rows in the contact registry, marked `sandbox`
(migration 0019) so that only rows it wrote are ever removed."""

from __future__ import annotations

import asyncpg

from correspondence.sandbox.values import SandboxParty


async def put_parties(conn: asyncpg.Connection | asyncpg.Pool, parties: tuple[SandboxParty, ...]) -> None:
    """Insert or reset the sandbox parties' contact rows (sorted, so concurrent starts of several
    processes lock them in the same order)."""
    ordered = sorted(parties, key=lambda p: p.urn)
    await conn.execute(
        """INSERT INTO contacts (party, email, mobile, reserved, sandbox, updated)
           SELECT p.party, p.email, p.mobile, p.reserved, true, now()
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS p(party, email, mobile, reserved)
           ON CONFLICT (party) DO UPDATE SET email = EXCLUDED.email, mobile = EXCLUDED.mobile,
             reserved = EXCLUDED.reserved, sandbox = true, updated = now()
           WHERE (contacts.email, contacts.mobile, contacts.reserved, contacts.sandbox)
                 IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.mobile, EXCLUDED.reserved, true)""",
        [p.urn for p in ordered],
        [p.email for p in ordered],
        [p.mobile for p in ordered],
        [p.reserved for p in ordered],
    )


async def remove_parties(conn: asyncpg.Connection | asyncpg.Pool, parties: tuple[SandboxParty, ...]) -> int:
    """Delete the rows the sandbox wrote (by primary key: no scan of the registry)."""
    result: str = await conn.execute(
        "DELETE FROM contacts WHERE party = ANY($1::text[]) AND sandbox",
        sorted(p.urn for p in parties),
    )
    return int(result.rsplit(" ", 1)[-1])
