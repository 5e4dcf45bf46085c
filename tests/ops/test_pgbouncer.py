"""The app behind PgBouncer in transaction pooling mode: every request's transaction may run on another
server connection, so nothing may rely on session state (prepared statements, SET, session advisory
locks). Real PgBouncer (Debian's), real app process, real HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import cloned_database, run_cli, vetbook_command
from tests.servers import running_app
from web.core.embedded_postgres import LocalPostgres, free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@pytest.fixture(scope="module")
def bounced_database(pg_server: LocalPostgres, template_database: str, tmp_path_factory) -> Iterator[dict]:
    """A database with the demo data, reachable directly and through PgBouncer (transaction mode)."""
    if not Path(PGBOUNCER).exists():
        pytest.fail("pgbouncer is not installed (apt-get install pgbouncer; .ci/system-deps does it)")
    with cloned_database(pg_server, template_database, "pgb") as direct_url:
        yield from _bounced(pg_server, direct_url, tmp_path_factory)


def _bounced(pg_server: LocalPostgres, direct_url: str, tmp_path_factory) -> Iterator[dict]:
    name = direct_url.rsplit("/", 1)[1]
    run_cli(*vetbook_command("demo"), database_url=direct_url)
    folder = tmp_path_factory.mktemp("pgbouncer")
    folder.chmod(0o755)
    port = free_port()
    (folder / "users.txt").write_text(f'"postgres" "{pg_server.password}"\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{name} = host=127.0.0.1 port={pg_server.port} dbname={name}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = plain
auth_file = {folder / 'users.txt'}
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
logfile = {folder / 'pgbouncer.log'}
pidfile = {folder / 'pgbouncer.pid'}
ignore_startup_parameters = extra_float_digits,application_name
"""
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    # PgBouncer refuses to run as root; like PostgreSQL it runs as an unprivileged user.
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "nobody", "--", *command]
    (folder / "pgbouncer.log").touch()
    (folder / "pgbouncer.log").chmod(0o666)
    folder.chmod(0o777)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        import socket

        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pgbouncer did not start: " + (folder / "pgbouncer.log").read_text())
            time.sleep(0.05)
        bounced_url = f"postgresql://postgres:{pg_server.password}@127.0.0.1:{port}/{name}"
        yield {"direct_url": direct_url, "bounced_url": bounced_url, "log": folder / "app.log"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_booking_flow_and_concurrent_holds_through_pgbouncer(bounced_database: dict) -> None:
    env = {"VETBOOK_DB_STATEMENT_CACHE_SIZE": "0", "VETBOOK_DB_POOL_MAX": "8", "VETBOOK_HOLD_RATE_LIMIT": "1000/60"}
    with running_app(bounced_database["bounced_url"], bounced_database["log"], env=env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            token = (await http.post("/api/v1/auth/token", json={
                "email": "owner@vetbook.test", "password": "owner-demo-2026"})).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            clinic = (await http.get("/api/v1/clinics", headers=headers)).json()[0]
            services = (await http.get(f"/api/v1/clinics/{clinic['clinic_id']}/services", headers=headers)).json()
            grooming = next(s for s in services if s["name"] == "Grooming")
            pet = (await http.get("/api/v1/pets", headers=headers)).json()[0]
            slots = []
            for days in range(1, 8):
                day = (date.today() + timedelta(days=days)).isoformat()
                slots = (await http.get("/api/v1/slots", headers=headers, params={
                    "clinic_id": clinic["clinic_id"], "service_id": grooming["service_id"], "date": day})).json()
                if slots:
                    break
            assert slots, "the demo data should have grooming slots this week"

            # Many requests at once over few server connections: each transaction may land anywhere.
            answers = await asyncio.gather(*[
                http.get("/api/v1/slots", headers=headers, params={
                    "clinic_id": clinic["clinic_id"], "service_id": grooming["service_id"], "date": day})
                for _ in range(40)
            ])
            assert {answer.status_code for answer in answers} == {200}

            hold = await http.post("/api/v1/reservations", headers=headers,
                                   json={"slot_id": slots[0]["slot_id"], "pet_id": pet["pet_id"]})
            assert hold.status_code == 201, hold.text
            booking = await http.post(f"/api/v1/reservations/{hold.json()['reservation_id']}/confirm",
                                      headers=headers, json={"lock_token": hold.json()["lock_token"]})
            assert booking.status_code == 201, booking.text
            cancelled = await http.post(f"/api/v1/bookings/{booking.json()['booking_id']}/cancel", headers=headers,
                                        json={"reason": "customer_request", "version": booking.json()["version"]})
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        log = server.log()
    assert "prepared statement" not in log and "Traceback" not in log, log
    check = run_cli(*vetbook_command("check"), database_url=bounced_database["direct_url"])
    assert check.stdout.startswith("ok")
