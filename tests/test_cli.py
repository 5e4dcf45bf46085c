"""The ``vetbook`` command in child processes: the embedded database commands, help, and a real ``serve``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PROJECT_ROOT, vetbook_command
from tests.db.factories import make_clinic
from web.core.embedded_postgres import LocalPostgres, free_port

VETBOOK_SCRIPT = Path(sys.executable).parent / "vetbook"
STARTUP_TIMEOUT = 90  # seconds; the machine is small and may be busy with other test runs


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without any database setting of the developer's, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "VETBOOK_DB_PORT"}}
    return env | extra


def vetbook(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        vetbook_command(*args), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data folder for the CLI's embedded server; whatever the test did, its server is stopped at the end.

    Made with mkdtemp rather than tmp_path: a concurrent pytest run strips o+x from /tmp/pytest-of-<user>,
    which the unprivileged server user must traverse."""
    root = Path(tempfile.mkdtemp(prefix="vetbook-cli-"))
    data_dir = root / "data"
    try:
        yield data_dir
    finally:
        if (data_dir / "pgdata" / "PG_VERSION").exists():
            LocalPostgres(data_dir).stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_db_start_url_status_stop(embedded_data_dir: Path) -> None:
    env = clean_env(VETBOOK_DATA_DIR=str(embedded_data_dir))

    started = vetbook("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert re.fullmatch(r"postgresql://postgres:[^@\s]+@127\.0\.0\.1:\d+/vetbook", url), url
    connection = await asyncpg.connect(url)
    try:
        assert await connection.fetchval("SELECT current_database()") == "vetbook"
    finally:
        await connection.close()

    status = vetbook("db", "status", env=env)
    assert (status.returncode, status.stdout.strip()) == (0, f"running: {url}")

    printed = vetbook("db", "url", env=env)
    assert (printed.returncode, printed.stdout.strip()) == (0, url)

    stopped = vetbook("db", "stop", env=env)
    assert (stopped.returncode, stopped.stdout.strip()) == (0, "stopped")
    assert not (embedded_data_dir / "pgdata" / "postmaster.pid").exists()

    status = vetbook("db", "status", env=env)
    assert (status.returncode, status.stdout.strip()) == (0, "stopped")
    again = vetbook("db", "stop", env=env)
    assert (again.returncode, again.stdout.strip()) == (0, "not running")


@pytest.mark.parametrize("command", ["start", "stop", "status"])
def test_db_commands_refuse_when_database_url_is_set(command: str, embedded_data_dir: Path) -> None:
    env = clean_env(
        VETBOOK_DATA_DIR=str(embedded_data_dir), DATABASE_URL="postgresql://app@127.0.0.1:5432/vetbook"
    )
    result = vetbook("db", command, env=env)
    assert result.returncode == 2
    assert "DATABASE_URL is set" in result.stderr
    assert result.stdout == ""
    # No cluster was made (the folder itself may hold other app state, such as the session secret).
    for created_by_start in ("pgdata", "run", "port", "password"):
        assert not (embedded_data_dir / created_by_start).exists(), created_by_start


def test_help_lists_the_commands() -> None:
    result = subprocess.run([str(VETBOOK_SCRIPT), "--help"], capture_output=True, text=True, env=clean_env())
    assert result.returncode == 0, result.stderr
    commands_section = result.stdout.split("Commands:", 1)[1]
    listed = {line.split()[0] for line in commands_section.splitlines() if line.strip()}
    assert {"serve", "migrate", "demo", "db"} <= listed, result.stdout


def test_serve_help_shows_its_options() -> None:
    result = subprocess.run(
        [str(VETBOOK_SCRIPT), "serve", "--help"], capture_output=True, text=True, env=clean_env()
    )
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--workers"):
        assert re.search(rf"^\s+{option}\b", result.stdout, re.MULTILINE), result.stdout


class Server:
    """``vetbook serve`` as a child process in its own process group, logging to a file."""

    def __init__(self, database_url: str, log_path: Path, workers: int) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            vetbook_command("serve", "--port", str(self.port), "--workers", str(workers)),
            cwd=PROJECT_ROOT,
            # The app keeps state (its session secret) in the data folder: keep it in the test's own folder.
            env=clean_env(DATABASE_URL=database_url, VETBOOK_DATA_DIR=str(log_path.parent / "vetbook-data")),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready, what: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not ready():
            if self.process.poll() is not None:
                pytest.fail(f"vetbook serve exited with {self.process.returncode} while waiting for {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.log()}")
            time.sleep(0.2)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/api/v1/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def terminate(self) -> None:
        """SIGTERM to the whole group (uvicorn's parent and workers), SIGKILL if it does not end."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
async def clinics_database(fresh_database_url: str, conn: asyncpg.Connection) -> tuple[str, list[str]]:
    """A migrated database holding two clinics; returns its URL and the clinics' names."""
    names = ["Klinik Hewan Sehat Kemang", "Pet & Vet Ubud"]
    for name, zone in zip(names, ["Asia/Jakarta", "Asia/Makassar"], strict=True):
        await make_clinic(conn, name=name, timezone=zone)
    return fresh_database_url, names


def worker_pids(log: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log)}


def process_alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_health_and_home_page(
    workers: int, clinics_database: tuple[str, list[str]], tmp_path: Path
) -> None:
    database_url, clinic_names = clinics_database
    server = Server(database_url, tmp_path / "serve.log", workers)
    try:
        server.wait_until(server.healthy, "GET /api/v1/health")
        # Every worker runs the lifespan (pool, partition job); wait until all have finished starting.
        server.wait_until(lambda: server.log().count("Application startup complete.") == workers, "all workers")

        health = httpx.get(f"{server.base_url}/api/v1/health", timeout=10)
        assert health.json() == {"status": "ok", "database": "ok"}

        home = httpx.get(f"{server.base_url}/", timeout=10)
        assert home.status_code == 200
        assert home.headers["content-type"].startswith("text/html")
        assert "Klinik Hewan Sehat Kemang" in home.text
        assert "Pet &amp; Vet Ubud" in home.text  # escaped by Jinja, not raw
        assert clinic_names[1] not in home.text

        # A few more requests, so that with two workers both are likely to serve some.
        for _ in range(6):
            assert httpx.get(f"{server.base_url}/api/v1/health", timeout=10).json()["database"] == "ok"
    finally:
        server.terminate()

    log = server.log()
    # A clean shutdown on SIGTERM (a single uvicorn server re-raises the signal once it has shut down).
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert log.count("Application shutdown complete.") == workers, log
    pids = worker_pids(log)
    assert len(pids) == workers, log
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in log
    # Both workers run the partition job; its advisory lock lets one do it and the other skip, quietly.
    for failure in ("Traceback", "ERROR", "job failed", "exception"):
        assert failure not in log, log
    assert not [pid for pid in pids if process_alive(pid)], "a worker outlived vetbook serve"
