"""Alembic environment: raw-SQL migrations run over asyncpg, one at a time (advisory lock)."""

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATION_LOCK = 7_312_024


def _run(connection: Connection) -> None:
    connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK})"))
    connection.commit()  # the session-level lock outlives this transaction
    try:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        connection.commit()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_main())
