"""The app as a real child process (``vetbook serve``) on a free port of 127.0.0.1, for tests that need
real HTTP between processes: end-to-end browser tests, several app processes sharing one database.

``running_app`` always stops the process, also when the test fails.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PROJECT_ROOT, vetbook_command
from web.core.embedded_postgres import free_port

SERVER_START_TIMEOUT = 45.0


@dataclass
class LiveServer:
    base_url: str
    database_url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def url(self, path: str) -> str:
        return self.base_url + path


def wait_until_healthy(server: LiveServer, timeout: float = SERVER_START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the app exited with code {server.process.returncode} before it was healthy:\n{server.log()}"
            )
        try:
            with urllib.request.urlopen(server.url("/api/v1/health"), timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"the app was not healthy after {timeout:.0f} s ({last_error}):\n{server.log()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def start_app(database_url: str, log_path: Path, port: int | None = None, env: dict[str, str] | None = None,
              extra_args: tuple[str, ...] = ()) -> LiveServer:
    """Start ``vetbook serve`` against ``database_url`` and return once it answers its health check."""
    port = port or free_port()
    process_env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [*vetbook_command("serve", "--host", "127.0.0.1", "--port", str(port), *extra_args)],
            cwd=PROJECT_ROOT, env=process_env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", database_url, process, log_path)
    try:
        wait_until_healthy(server)
    except BaseException:
        stop(process)
        raise
    return server


def start_apps_side_by_side(database_url: str, log_dir: Path, labels: str, started: list,
                            env: dict[str, str] | None = None) -> list[LiveServer]:
    """Start one app process per label at once (each spends seconds importing). Every process that did
    start is appended to ``started`` before an error of another one is raised, so the caller stops them all."""
    with ThreadPoolExecutor(max_workers=len(labels)) as pool:
        futures = [pool.submit(start_app, database_url, log_dir / f"{label}.log", env=env) for label in labels]
        servers = []
        for future in futures:
            try:
                servers.append(future.result())
            except Exception:
                continue  # raised below, once every server that did start is registered for stopping
            started.append(servers[-1].process)
        for future in futures:
            future.result()
    return servers


@contextmanager
def running_app(database_url: str, log_path: Path, **kwargs) -> Iterator[LiveServer]:
    server = start_app(database_url, log_path, **kwargs)
    try:
        yield server
    finally:
        stop(server.process)
