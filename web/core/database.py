"""Where the database is and how the app talks to it.

With ``DATABASE_URL`` set, that server is used. Without it, the embedded PostgreSQL under
``VETBOOK_DATA_DIR`` is started (or reused) and its URL is used.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode

from web.core.connections import VetbookEngine, keep_session_state
from web.core.embedded_postgres import LocalPostgres
from web.settings import get_settings


def embedded_server() -> LocalPostgres:
    settings = get_settings()
    # It archives its WAL from the start, so that `vetbook backup` plus the archive can restore any moment.
    return LocalPostgres(data_dir=settings.data_dir, port=settings.embedded_db_port,
                         archive_dir=settings.backup_dir / "wal")


def resolve_database_url() -> str:
    """The primary's URL: ``DATABASE_URL``, or the embedded server's (started if it is not running)."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    url = embedded_server().start()
    # Child processes (uvicorn workers, piccolo's CLI) then find the running server without racing to start it.
    os.environ["DATABASE_URL"] = url
    return url


def primary_dsn(url: str) -> str:
    """``url``, and when it names several hosts (``postgresql://u:p@h1:5432,h2:5432/db``, the form Patroni
    and libpq use for a failover pair), with ``target_session_attrs=read-write`` unless it says otherwise:
    asyncpg then tries the hosts in turn and keeps the one that takes writes, so a new connection after a
    failover finds the new primary. One host is left as it is."""
    base, _, query = url.partition("?")
    authority = base.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2]
    options = dict(parse_qsl(query, keep_blank_values=True))
    if "," not in authority or "target_session_attrs" in options:
        return url
    return f"{base}?{urlencode(options | {'target_session_attrs': 'read-write'})}"


def replica_urls(setting: str) -> list[str]:
    """The replicas of ``DATABASE_REPLICA_URL``: one URL, or several separated by commas."""
    return [url.strip() for url in setting.split(",") if url.strip()]


def create_engine(url: str, replica_url: str = "") -> VetbookEngine:
    """The primary's engine (``url`` may name several hosts: see ``primary_dsn``). With ``replica_url`` (one
    URL or several, comma-separated), lag-tolerant reads go to those servers, nodes named replica-1,
    replica-2, … (see web/core/routing.py); without it they stay on the primary."""
    replicas = replica_urls(replica_url)
    extra_nodes = ({f"replica-{number}": _engine(replica) for number, replica in enumerate(replicas, 1)}
                   if replicas else None)
    return _engine(primary_dsn(url), extra_nodes)


def _engine(dsn: str, extra_nodes: dict[str, VetbookEngine] | None = None) -> VetbookEngine:
    return VetbookEngine(
        config={
            "dsn": dsn,
            # 0 behind PgBouncer in transaction mode, where prepared statements do not survive a transaction.
            "statement_cache_size": get_settings().db_statement_cache_size,
            "server_settings": {"application_name": "vetbook"},
        },
        # Piccolo would try to create uuid-ossp, which the embedded server lacks; gen_random_uuid() is built in.
        extensions=(),
        extra_nodes=extra_nodes,
    )


async def open_pools(engine: VetbookEngine, min_size: int, max_size: int, **pool_options: Any) -> None:
    """Open the pools of the primary and of every replica node, all with the app's pool rules (no session
    reset on release: see web/core/connections.py)."""
    options = {"min_size": min_size, "max_size": max_size, "reset": keep_session_state} | pool_options
    await engine.start_connection_pool(**options)
    for node in engine.extra_nodes.values():
        await node.start_connection_pool(**options)
    async with engine.pool.acquire() as connection:
        from web.core import audit

        audit.use_generic_plans(not await connection.fetchval(_IS_CITUS))


# Whether the database is a Citus coordinator: Citus plans a statement for one shard from its parameters'
# values, so it needs custom plans (web/core/audit.py).
_IS_CITUS = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"


async def close_pools(engine: VetbookEngine) -> None:
    for node in engine.extra_nodes.values():
        await node.close_connection_pool()
    await engine.close_connection_pool()
