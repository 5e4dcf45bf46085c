"""Settings read from the environment, behind one cached function (see ``get_settings``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    # Empty means: start (or reuse) the embedded PostgreSQL under ``data_dir``.
    database_url: str
    # Reads that may lag (slot browsing, analytics) go here; defaults to the primary.
    replica_database_url: str
    data_dir: Path
    # Port of the embedded PostgreSQL; 0 picks a free one on first start and keeps it.
    embedded_db_port: int
    host: str
    port: int
    # 0 disables asyncpg's prepared-statement cache, which PgBouncer in transaction mode needs.
    db_statement_cache_size: int
    db_pool_min: int
    db_pool_max: int
    hold_ttl_seconds: int
    partition_months_ahead: int

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = Path(os.environ.get("VETBOOK_DATA_DIR", "") or PROJECT_ROOT / ".vetbook").resolve()
    return Settings(
        database_url=os.environ.get("DATABASE_URL", "").strip(),
        replica_database_url=os.environ.get("DATABASE_REPLICA_URL", "").strip(),
        data_dir=data_dir,
        embedded_db_port=_int_env("VETBOOK_DB_PORT", 0),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=_int_env("PORT", 8000),
        db_statement_cache_size=_int_env("VETBOOK_DB_STATEMENT_CACHE_SIZE", 100),
        db_pool_min=_int_env("VETBOOK_DB_POOL_MIN", 1),
        db_pool_max=_int_env("VETBOOK_DB_POOL_MAX", 10),
        hold_ttl_seconds=_int_env("HOLD_TTL_SECONDS", 600),
        partition_months_ahead=_int_env("VETBOOK_PARTITION_MONTHS_AHEAD", 3),
    )
