"""The service's database compares identifiers byte by byte but keeps the cluster's character
classes (kit/db.create_database_sql; the tests' database is created the same way)."""

from __future__ import annotations

import asyncpg

from correspondence.kit.db import create_database_sql


async def test_identifiers_compare_byte_wise_and_words_still_lowercase_norwegian_letters(
    db: asyncpg.Connection,
) -> None:
    collate, ctype = await db.fetchrow(
        "SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()"
    )
    assert collate == "C"
    assert ctype != "C"  # the cluster's UTF-8 locale, not plain C
    # what the inbox's word index does with a title (RECORD_PUBLISH)
    words = await db.fetchval("SELECT tsvector_to_array(to_tsvector('simple', 'ÆRLIG Søknad om Å'))")
    assert sorted(words) == sorted(["ærlig", "søknad", "om", "å"])
    # and the order of identifiers is the byte order
    ordered = await db.fetchval(
        "SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY['urn:b', 'urn:B', 'urn:a1', 'urn:a:2']) x"
    )
    assert ordered == ["urn:B", "urn:a1", "urn:a:2", "urn:b"]


def test_the_database_is_created_from_template0_with_collation_c() -> None:
    sql = create_database_sql("some_db")
    assert sql == "CREATE DATABASE \"some_db\" TEMPLATE template0 LC_COLLATE 'C'"
