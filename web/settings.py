"""Settings read from the environment, behind one cached function (see ``get_settings``)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
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


def _int_env_between(name: str, default: int, low: int, high: int) -> int:
    value = _int_env(name, default)
    if not low <= value <= high:
        raise SystemExit(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool_env(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"{name} must be 1 or 0, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    # Empty means: start (or reuse) the embedded PostgreSQL under ``data_dir``.
    database_url: str
    # Reads that may lag (slot browsing, analytics) go to these replicas in turn (comma-separated URLs;
    # web/core/routing.py has the rules); empty: the primary answers them.
    replica_database_url: str
    # Where live pages LISTEN (web/live/broker.py); empty means DATABASE_URL. Behind PgBouncer in
    # transaction mode, point it at the server itself: LISTEN needs a session of its own.
    listen_database_url: str
    data_dir: Path
    # Base backups and the embedded server's WAL archive (web/ops/backups.py).
    backup_dir: Path
    # Port of the embedded PostgreSQL; 0 picks a free one on first start and keeps it.
    embedded_db_port: int
    host: str
    port: int
    # 0 disables asyncpg's prepared-statement cache, which PgBouncer in transaction mode needs.
    db_statement_cache_size: int
    db_pool_min: int
    db_pool_max: int
    hold_ttl_seconds: int
    # How many pending holds one owner may have at once.
    max_active_holds: int
    # How long an unpaid booking waits for an online payment before it is cancelled.
    payment_ttl_minutes: int
    partition_months_ahead: int
    # A replica further behind the primary than this is skipped (web/core/routing.py).
    replica_max_lag_seconds: float
    # How long a request whose database went away is run again before it is answered 503
    # (web/core/failover.py): longer than a failover takes (Patroni: its leader TTL).
    database_retry_seconds: float
    # The bearer token that opens /metrics (web/core/metrics.py); empty: no metrics endpoint.
    metrics_token: str
    # Signs CSRF tokens; every app process must share it (see ``secret_key``).
    secret_key: str
    web_session_ttl_hours: int
    api_token_ttl_hours: int
    # Login limits (docs/security.md): only failed logins count. Per account *and* address together, the
    # first ``login_free_failures`` failures cost nothing; the next one makes that pair wait
    # ``login_first_delay_seconds``, each further one twice as long as the last, up to
    # ``login_max_delay_seconds``. Per address alone, failures for any account are capped by
    # ``login_ip_failure_limit`` ("N/S": N failures per S seconds), high because many phones share one
    # carrier address (CGNAT).
    login_free_failures: int
    login_first_delay_seconds: int
    login_max_delay_seconds: int
    login_ip_failure_limit: str
    # Per client address, every attempt counts: sign-ups (each an argon2 hash) and API token requests.
    signup_ip_rate_limit: str
    token_ip_rate_limit: str
    hold_rate_limit: str
    # Owner searches at the desk per staff member ("N/S"): a busy desk makes a few dozen an hour.
    desk_lookup_rate_limit: str
    # Mark cookies Secure even when a request arrives over plain HTTP (behind a TLS-terminating proxy
    # that does not send X-Forwarded-Proto). Requests seen as https get Secure cookies anyway.
    cookie_secure: bool
    # The built-in simulated gateway (its own payment page at /sandbox/pay/...). Anyone may "pay" there
    # without money, so it is off unless VETBOOK_SANDBOX_PAYMENTS=1 (``make run`` and the tests set it), and
    # the app refuses to start with it on beside a Midtrans production key (``startup_problems``).
    sandbox_payments_enabled: bool
    # Signs the sandbox's notifications the Midtrans way; defaults to a key derived from ``secret_key``.
    sandbox_server_key: str
    # Midtrans Snap is offered only when its server key is set.
    midtrans_server_key: str
    midtrans_is_production: bool
    # Snap's base URL (…/snap/v1); empty means midtransclient's own for the mode. Tests point it at a
    # local stand-in on 127.0.0.1.
    midtrans_snap_url: str
    # Midtrans' Core API base URL (refund, status, cancel); empty means midtransclient's own for the mode.
    midtrans_api_url: str
    # Xendit is offered only when its secret API key is set; its callbacks must carry the account's
    # verification token in x-callback-token. The API URL is for tests (a local stand-in); empty means
    # Xendit's own.
    xendit_secret_key: str
    xendit_callback_token: str
    xendit_api_url: str
    # How long a call to a payment gateway may take before it counts as failed.
    payment_gateway_timeout_seconds: int
    # Shards of the distributed tables' co-location group when ``vetbook citus distribute`` creates it
    # (web/ops/citus.py): more shards than worker cores, so that workers can be added and shards moved to
    # them later. Changing it later does not reshard tables already distributed.
    citus_shard_count: int

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url

    def startup_problems(self) -> list[str]:
        """Settings that must never run together; the app refuses to start while any is listed."""
        problems = []
        if self.sandbox_payments_enabled and self.midtrans_server_key and self.midtrans_is_production:
            problems.append(
                "VETBOOK_SANDBOX_PAYMENTS=1 beside a Midtrans production key: the sandbox lets anyone mark a "
                "real booking paid without paying. Unset VETBOOK_SANDBOX_PAYMENTS in production."
            )
        return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = Path(os.environ.get("VETBOOK_DATA_DIR", "") or PROJECT_ROOT / ".vetbook").resolve()
    secret_key = os.environ.get("VETBOOK_SECRET_KEY", "").strip() or _persistent_secret(data_dir)
    return Settings(
        database_url=os.environ.get("DATABASE_URL", "").strip(),
        replica_database_url=os.environ.get("DATABASE_REPLICA_URL", "").strip(),
        listen_database_url=os.environ.get("DATABASE_LISTEN_URL", "").strip(),
        data_dir=data_dir,
        backup_dir=Path(os.environ.get("VETBOOK_BACKUP_DIR", "") or data_dir / "backups").resolve(),
        embedded_db_port=_int_env("VETBOOK_DB_PORT", 0),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=_int_env("PORT", 8000),
        db_statement_cache_size=_int_env("VETBOOK_DB_STATEMENT_CACHE_SIZE", 100),
        db_pool_min=_int_env("VETBOOK_DB_POOL_MIN", 1),
        db_pool_max=_int_env("VETBOOK_DB_POOL_MAX", 10),
        hold_ttl_seconds=_int_env("HOLD_TTL_SECONDS", 600),
        max_active_holds=_int_env("VETBOOK_MAX_ACTIVE_HOLDS", 3),
        payment_ttl_minutes=_int_env("VETBOOK_PAYMENT_TTL_MINUTES", 30),
        partition_months_ahead=_int_env("VETBOOK_PARTITION_MONTHS_AHEAD", 3),
        replica_max_lag_seconds=float(_int_env("VETBOOK_REPLICA_MAX_LAG_SECONDS", 5)),
        database_retry_seconds=float(_int_env("VETBOOK_DATABASE_RETRY_SECONDS", 10)),
        metrics_token=os.environ.get("VETBOOK_METRICS_TOKEN", "").strip(),
        secret_key=secret_key,
        web_session_ttl_hours=_int_env("VETBOOK_SESSION_TTL_HOURS", 24 * 14),
        api_token_ttl_hours=_int_env("VETBOOK_API_TOKEN_TTL_HOURS", 24 * 30),
        login_free_failures=_int_env("VETBOOK_LOGIN_FREE_FAILURES", 5),
        login_first_delay_seconds=_int_env("VETBOOK_LOGIN_FIRST_DELAY_SECONDS", 15),
        login_max_delay_seconds=_int_env("VETBOOK_LOGIN_MAX_DELAY_SECONDS", 15 * 60),
        login_ip_failure_limit=os.environ.get("VETBOOK_LOGIN_IP_FAILURE_LIMIT", "300/900"),
        signup_ip_rate_limit=os.environ.get("VETBOOK_SIGNUP_IP_RATE_LIMIT", "10/60"),
        token_ip_rate_limit=os.environ.get("VETBOOK_TOKEN_IP_RATE_LIMIT", "120/60"),
        hold_rate_limit=os.environ.get("VETBOOK_HOLD_RATE_LIMIT", "30/600"),
        desk_lookup_rate_limit=os.environ.get("VETBOOK_DESK_LOOKUP_RATE_LIMIT", "300/3600"),
        cookie_secure=_bool_env("VETBOOK_COOKIE_SECURE"),
        sandbox_payments_enabled=_bool_env("VETBOOK_SANDBOX_PAYMENTS"),
        sandbox_server_key=os.environ.get("VETBOOK_SANDBOX_SERVER_KEY", "").strip()
        or hmac.new(secret_key.encode(), b"vetbook sandbox gateway server key", hashlib.sha256).hexdigest(),
        midtrans_server_key=os.environ.get("VETBOOK_MIDTRANS_SERVER_KEY", "").strip(),
        midtrans_is_production=_bool_env("VETBOOK_MIDTRANS_PRODUCTION"),
        midtrans_snap_url=os.environ.get("VETBOOK_MIDTRANS_SNAP_URL", "").strip().rstrip("/"),
        midtrans_api_url=os.environ.get("VETBOOK_MIDTRANS_API_URL", "").strip().rstrip("/"),
        xendit_secret_key=os.environ.get("VETBOOK_XENDIT_SECRET_KEY", "").strip(),
        xendit_callback_token=os.environ.get("VETBOOK_XENDIT_CALLBACK_TOKEN", "").strip(),
        xendit_api_url=os.environ.get("VETBOOK_XENDIT_API_URL", "").strip().rstrip("/"),
        payment_gateway_timeout_seconds=_int_env("VETBOOK_PAYMENT_GATEWAY_TIMEOUT", 15),
        citus_shard_count=_int_env_between("VETBOOK_CITUS_SHARD_COUNT", 32, 1, 1024),
    )


def _persistent_secret(data_dir: Path) -> str:
    """Without VETBOOK_SECRET_KEY, a random secret kept in the data folder, so that restarts and every
    worker process share it. (Production sets VETBOOK_SECRET_KEY.)"""
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: two processes starting at once agree on one secret.
        draft = data_dir / f".secret_key.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def parse_rate(spec: str) -> tuple[int, int]:
    """``"5/300"`` -> (5, 300): at most 5 hits per 300 seconds."""
    try:
        limit, seconds = (int(part) for part in spec.split("/"))
    except ValueError as exc:
        raise SystemExit(f"a rate limit must look like 5/300 (hits/seconds), got {spec!r}") from exc
    return limit, seconds
