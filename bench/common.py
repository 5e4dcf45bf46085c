"""What the HTTP benchmarks share: a throw-away PostgreSQL, a real ``vetbook serve``, a lean HTTP/1.1 client,
CPU and memory of process trees from /proc, seeding of people and tokens through plain SQL, and the report.

Everything here talks to the app over HTTP only and to the database with its own SQL, so the benchmarks keep
working while the engine's SQL changes. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from web.core.embedded_postgres import LocalPostgres, free_port  # noqa: E402

HOST = "127.0.0.1"
TIMEZONE = "Asia/Jakarta"
RESULTS_DIR = ROOT / "bench" / "results"
APP_START_TIMEOUT_SECONDS = 90
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def use_uvloop() -> str:
    """The load client's event loop: uvloop when installed (it spends less CPU per request than asyncio's)."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM and SIGHUP end the benchmark like Ctrl-C does: through the ``finally`` blocks that stop the app
    and PostgreSQL and remove the temporary folder (the default handlers would skip them)."""
    def leave(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)


def code_version() -> dict:
    """Which code was measured: the commit, and how many files of the app differ from it (read-only git)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = git("status", "--porcelain", "--", "web", "templates", "piccolo_migrations")
    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "uncommitted_app_files": len(changed.splitlines()) if changed else 0}


def machine_load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1m": round(one, 2), "loadavg_5m": round(five, 2), "loadavg_15m": round(fifteen, 2),
            "cpus": os.cpu_count(), "at": datetime.now(UTC).isoformat(timespec="seconds")}


# ---------------------------------------------------------------- PostgreSQL


@contextmanager
def throwaway_postgres(prefix: str = "vetbook-bench-") -> Iterator[tuple[LocalPostgres, str, Path]]:
    """An embedded PostgreSQL (durability off; LocalPostgres preloads pg_stat_statements) in a temporary
    folder, migrated with the app's migrations; stopped and deleted when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    server = LocalPostgres(folder / "pg", fast=True)
    try:
        url = server.start()
        result = subprocess.run([sys.executable, "-m", "web.cli", "migrate"], cwd=ROOT, capture_output=True,
                                text=True, env=app_environment(url, folder))
        if result.returncode != 0:
            raise RuntimeError(f"vetbook migrate failed:\n{result.stdout}\n{result.stderr}")
        yield server, url, folder
    finally:
        try:
            server.destroy()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def track_planning(server: LocalPostgres) -> None:
    """pg_stat_statements also times planning (off by default): a statement's cost is plan + execution."""
    server.psql("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
    server.psql("SELECT pg_reload_conf()")


def postmaster_pid(server: LocalPostgres) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().split()[0])


def app_environment(database_url: str, folder: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1",
            "VETBOOK_DATA_DIR": str(folder / "app-data"),
            "VETBOOK_SECRET_KEY": "bench-secret-key-not-for-production", **(extra or {})}


# ---------------------------------------------------------------- the app


@dataclass
class App:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def start_app(database_url: str, folder: Path, workers: int, env: dict[str, str] | None = None) -> App:
    """``vetbook serve --workers N`` on a free port of 127.0.0.1, in a process group of its own; returns once
    ``/api/v1/health`` answers 200 (as tests/servers.py waits)."""
    port = free_port()
    log_path = folder / f"app-{port}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve", "--host", HOST, "--port", str(port),
             "--workers", str(workers)],
            cwd=ROOT, env=app_environment(database_url, folder, env), stdin=subprocess.DEVNULL,
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    app = App(process, port, log_path)
    deadline = time.monotonic() + APP_START_TIMEOUT_SECONDS
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited with code {process.returncode}:\n{app.log_tail()}")
            try:
                with urllib.request.urlopen(app.base_url + "/api/v1/health", timeout=2) as response:
                    if response.status == 200 and len(app_workers(app)) >= workers:
                        return app
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app was not healthy in time:\n{app.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        stop_app(app)
        raise


def stop_app(app: App) -> None:
    """SIGTERM to the app (uvicorn stops its workers), then SIGKILL to its own process group if needed."""
    process = app.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    try:  # anything of its group still alive (a worker whose parent died): the group we created for it
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def app_workers(app: App) -> list[int]:
    """The uvicorn worker processes (children of the app's process that run the app, not helpers)."""
    workers = []
    for pid in children_map().get(app.process.pid, []):
        cmdline = read_cmdline(pid)
        if "resource_tracker" in cmdline:
            continue
        workers.append(pid)
    return sorted(workers)


# ---------------------------------------------------------------- /proc


def read_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def read_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, own CPU ticks utime+stime, reaped children's ticks cutime+cstime), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry))
    return children


def tree_cpu_seconds(root: int, children: dict[int, list[int]] | None = None,
                     classify=None) -> dict[str, float]:
    """CPU seconds used so far by ``root`` and its descendants, including descendants already reaped
    (their time is in their parent's cutime/cstime). ``classify(pid) -> label`` splits the live ones;
    reaped ones and the root itself count as ``other``. The key ``total`` sums everything."""
    children = children if children is not None else children_map()
    parts: dict[str, float] = {"total": 0.0}
    stack = [root]
    while stack:
        pid = stack.pop()
        stat = read_stat(pid)
        if stat is None:
            continue
        _, own, reaped = stat
        label = classify(pid) if classify and pid != root else "other"
        parts[label] = parts.get(label, 0.0) + own / CLOCK_TICKS
        parts["other"] = parts.get("other", 0.0) + reaped / CLOCK_TICKS
        parts["total"] += (own + reaped) / CLOCK_TICKS
        stack.extend(children.get(pid, []))
    return parts


def postgres_process_kind(pid: int) -> str:
    """A PostgreSQL child process: a client backend (``postgres: user db host(port) state``) or a helper."""
    title = read_cmdline(pid)
    return "client_backends" if title.startswith("postgres: postgres ") else "background"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@dataclass
class CpuMeter:
    """CPU seconds of the app's process tree, PostgreSQL's process tree and this process, between two
    snapshots (taken at the start and the end of a timed window)."""

    app_pid: int | None
    postmaster: int
    started: dict = field(default_factory=dict)

    def snapshot(self) -> dict:
        children = children_map()
        own = os.times()
        snap = {"postgres": tree_cpu_seconds(self.postmaster, children, postgres_process_kind),
                "client": own.user + own.system, "client_children": own.children_user + own.children_system}
        if self.app_pid is not None:
            snap["app"] = tree_cpu_seconds(self.app_pid, children)["total"]
            snap["app_processes"] = {pid: tree_cpu_seconds(pid, children)["total"]
                                     for pid in children.get(self.app_pid, [])}
        return snap

    def start(self) -> None:
        self.started = self.snapshot()

    def stop(self) -> dict:
        end, begin = self.snapshot(), self.started
        spent = {"client": end["client"] - begin["client"],
                 "client_children": end["client_children"] - begin["client_children"],
                 "postgres": end["postgres"]["total"] - begin["postgres"]["total"],
                 "postgres_parts": {key: round(end["postgres"].get(key, 0) - begin["postgres"].get(key, 0), 3)
                                    for key in end["postgres"] if key != "total"}}
        if "app" in end:
            spent["app"] = end["app"] - begin["app"]
            # Per child of the app's process (the workers, and the resource tracker): how evenly they worked.
            spent["app_per_process"] = sorted(
                (round(seconds - begin["app_processes"].get(pid, 0.0), 2)
                 for pid, seconds in end["app_processes"].items()), reverse=True)
        return spent


# ---------------------------------------------------------------- a lean HTTP/1.1 client


class HttpError(RuntimeError):
    pass


class RawHttp:
    """One keep-alive HTTP/1.1 connection with as little client CPU per request as Python allows: requests
    are written as bytes, responses parsed by hand (status line, Content-Length or chunked body)."""

    def __init__(self, port: int, host: str = HOST) -> None:
        if host != HOST:
            raise ValueError("benchmarks only contact 127.0.0.1")
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        self.local_port = self.writer.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    def encode(self, method: str, path: str, headers: bytes = b"", body: bytes | None = None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self._host_header + headers
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        return head + b"\r\n" + (body or b"")

    def send(self, raw: bytes) -> None:
        self.writer.write(raw)

    async def read_response(self) -> tuple[int, bytes]:
        reader = self.reader
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            raise HttpError(f"connection closed: {exc!r}") from exc
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            body = await reader.readexactly(int(lower[at + 17:end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            body = b"".join(chunks)
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body

    async def request(self, method: str, path: str, headers: bytes = b"", body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.send(self.encode(method, path, headers, body))
        return await self.read_response()


# ---------------------------------------------------------------- which worker holds a connection


def _server_side_inodes(server_port: int) -> dict[int, int]:
    """{client port: socket inode} of the accepted connections to ``server_port`` (from /proc/net/tcp)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if inode and int(local.split(":")[1], 16) == server_port:
            found[int(remote.split(":")[1], 16)] = inode
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


async def connection_owners(server_port: int, connections: list[RawHttp], worker_pids: list[int],
                            wait_seconds: float = 2.0) -> list[int | None]:
    """The worker process that accepted each connection (None if none did within ``wait_seconds``)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        by_port = _server_side_inodes(server_port)
        inodes = {pid: _socket_inodes(pid) for pid in worker_pids}
        owners = []
        for http in connections:
            inode = by_port.get(http.local_port)
            owners.append(next((pid for pid, held in inodes.items() if inode in held), None))
        if all(owner is not None for owner in owners) or time.monotonic() > deadline:
            return owners
        await asyncio.sleep(0.02)


async def open_balanced(port: int, count: int, worker_pids: list[int], balance: bool = True,
                        attempts: int = 40) -> tuple[list[RawHttp], list[int]]:
    """``count`` keep-alive connections, opened one after another. With ``balance`` (and several workers), a
    connection that a worker already holding its share accepted is closed and opened again, so every worker
    serves ``count / workers`` clients: the kernel hands a burst of connections on uvicorn's shared socket to
    whichever worker wakes first, often all to one. Returns the connections and how many each worker holds."""
    share = -(-count // max(1, len(worker_pids)))
    held: dict[int, int] = {pid: 0 for pid in worker_pids}
    connections = []
    for _ in range(count):
        for attempt in range(attempts):
            http = RawHttp(port)
            await http.open()
            [owner] = await connection_owners(port, [http], worker_pids)
            if not balance or owner is None or held[owner] < share or attempt == attempts - 1:
                break
            http.close()
            await asyncio.sleep(0.01)
        if owner is not None:
            held[owner] += 1
        connections.append(http)
    return connections, sorted(held.values(), reverse=True)


# ---------------------------------------------------------------- people, tokens, sessions (plain SQL)


def token_hash(token: str) -> bytes:
    """What auth_sessions stores for a secret (web/accounts/auth.py: SHA-256 of the token)."""
    return hashlib.sha256(token.encode()).digest()


async def seed_owners(conn, count: int, label: str, species: str = "cat") -> list[dict]:
    """``count`` owners with one pet and one API bearer token each, in three set-based INSERTs. Returns
    ``[{user_id, pet_id, token, auth}]`` where ``auth`` is the ready ``Authorization`` header line."""
    if count <= 0:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO users (email, name, role, password_hash)
        SELECT 'bench-' || $1 || '-' || n || '@example.test', 'Bench owner ' || n, 'owner', 'not-a-password-hash'
        FROM generate_series(1, $2::int) n
        RETURNING user_id
        """,
        label, count,
    )
    user_ids = [row["user_id"] for row in rows]
    pets = await conn.fetch(
        "INSERT INTO pets (owner_id, name, species) SELECT u, 'Pet', $2 FROM unnest($1::uuid[]) u "
        "RETURNING pet_id, owner_id",
        user_ids, species,
    )
    pet_of = {row["owner_id"]: row["pet_id"] for row in pets}
    tokens = [secrets.token_urlsafe(32) for _ in user_ids]
    await add_sessions(conn, user_ids, tokens, "api")
    return [{"user_id": user_id, "pet_id": pet_of[user_id], "token": token,
             "auth": f"Authorization: Bearer {token}\r\n".encode()}
            for user_id, token in zip(user_ids, tokens, strict=True)]


async def add_sessions(conn, user_ids: list, tokens: list[str], kind: str) -> None:
    """Sessions (``web``: the ``vb_session`` cookie) or API tokens (``api``) for these users, as
    web/accounts/services.create_session stores them: the SHA-256 of the secret, 30 days valid."""
    await conn.execute(
        "INSERT INTO auth_sessions (token_hash, user_id, kind, expires_at) "
        "SELECT h, u, $3, now() + interval '30 days' FROM unnest($1::bytea[], $2::uuid[]) AS t(h, u)",
        [token_hash(token) for token in tokens], user_ids, kind,
    )


async def seed_manager(conn) -> str:
    """A manager of every clinic with a web session; returns the ``Cookie`` header value."""
    user_id = await conn.fetchval(
        "INSERT INTO users (email, name, role, password_hash) "
        "VALUES ('bench-manager@example.test', 'Bench manager', 'manager', 'not-a-password-hash') RETURNING user_id")
    token = secrets.token_urlsafe(32)
    await add_sessions(conn, [user_id], [token], "web")
    return f"vb_session={token}"


async def web_cookie_for(conn, user_id) -> str:
    token = secrets.token_urlsafe(32)
    await add_sessions(conn, [user_id], [token], "web")
    return f"vb_session={token}"


# ---------------------------------------------------------------- pg_stat_statements


async def reset_statements(conn) -> None:
    await conn.execute("SELECT pg_stat_statements_reset()")


async def read_statements(conn, per: int, top: int = 10) -> dict:
    """Statements of the benchmark's database since the last reset (this monitor's own left out): total calls,
    calls per ``per`` (bookings or requests), the top ``top`` by calls and by total time (planning + execution:
    planning is timed when ``track_planning`` is on)."""
    rows = await conn.fetch(
        """
        SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, plans, total_exec_time, total_plan_time, rows
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query NOT ILIKE '%pg_stat_statements%'
        """
    )
    calls = sum(row["calls"] for row in rows)
    exec_ms = sum(row["total_exec_time"] for row in rows)
    plan_ms = sum(row["total_plan_time"] for row in rows)

    def line(row) -> dict:
        # plans < calls when a cached (generic) plan is reused; equal when every call is planned again.
        return {"query": row["query"][:160], "calls": row["calls"], "plans": row["plans"],
                "per_unit": round(row["calls"] / per, 2) if per else None,
                "total_ms": round(row["total_exec_time"], 1),
                "mean_ms": round(row["total_exec_time"] / row["calls"], 3) if row["calls"] else None,
                "mean_plan_ms": round(row["total_plan_time"] / row["calls"], 3) if row["calls"] else None,
                "ms_per_unit": round(row["total_exec_time"] / per, 3) if per else None,
                "plan_ms_per_unit": round(row["total_plan_time"] / per, 3) if per else None}

    return {
        "calls": calls,
        "per_unit": round(calls / per, 2) if per else None,
        "exec_ms_per_unit": round(exec_ms / per, 3) if per else None,
        "plan_ms_per_unit": round(plan_ms / per, 3) if per else None,
        "top_by_calls": [line(row) for row in sorted(rows, key=lambda r: -r["calls"])[:top]],
        "top_by_time": [line(row) for row in sorted(rows, key=lambda r: -(r["total_exec_time"] + r["total_plan_time"]))
                        [:top]],
    }


# ---------------------------------------------------------------- figures and the report


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def ms_per(seconds: float, count: int) -> float | None:
    """Milliseconds per unit (booking, request) of ``seconds`` spent on ``count`` of them."""
    return round(seconds * 1000 / count, 2) if count else None


def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def latency_summary(ms: list[float]) -> dict:
    return {"count": len(ms), "p50_ms": rounded(percentile(ms, 0.50)), "p95_ms": rounded(percentile(ms, 0.95)),
            "p99_ms": rounded(percentile(ms, 0.99)), "max_ms": rounded(max(ms) if ms else None)}


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    def cell(value: object) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    text = [[cell(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]
    print(f"\n{title}")
    for k, row in enumerate(text):
        print("  " + "  ".join(value.ljust(widths[i]) if i == 0 else value.rjust(widths[i])
                               for i, value in enumerate(row)))
        if k == 0:
            print("  " + "  ".join("-" * width for width in widths))


def write_json(report: dict, path: str | None, name: str) -> Path:
    target = Path(path) if path else RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return target
