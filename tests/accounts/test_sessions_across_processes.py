"""Sessions and tokens live in PostgreSQL, not in a process: two real app processes (A and B) on one database.

A cookie or token issued by one process works on the other and survives a restart; ending it (logout,
revocation, expiry, deactivation of the person) takes effect on every process with the very next request,
because every request looks the session up again.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT
from tests.conftest import cloned_database, connected, run_cli, vetbook_command
from tests.servers import LiveServer, start_app, start_apps_side_by_side, stop
from web.accounts.auth import SESSION_COOKIE
from web.core.embedded_postgres import LocalPostgres

PASSWORD = "session-password-1"
# Logins here are few; generous limits keep the rate limits (tested in test_rate_limits.py) out of the way.
ENV = {"VETBOOK_LOGIN_RATE_LIMIT": "1000/300", "VETBOOK_LOGIN_IP_RATE_LIMIT": "1000/300"}
CREATED = re.compile(r"created \w+ \S+ \(([0-9a-f-]{36})\)")


@dataclass
class Person:
    email: str
    name: str
    role: str
    user_id: str = ""


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    database_url: str
    logs: Path
    people: dict[str, Person]
    processes: list = field(default_factory=list)

    def restart_a(self) -> None:
        """Stop process A and start a new one on the same database (on a new port)."""
        stop(self.a.process)
        self.a = start_app(self.database_url, self.logs / "a-restarted.log", env=ENV)
        self.processes.append(self.a.process)


@pytest.fixture(scope="module")
def cluster(
    pg_server: LocalPostgres, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    with cloned_database(pg_server, template_database, "sessions") as database_url:
        yield from _cluster(pg_server, database_url, tmp_path_factory)


def _cluster(pg_server: LocalPostgres, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    name = database_url.rsplit("/", 1)[1]
    logs = tmp_path_factory.mktemp("session-servers")
    people = {
        "owner": Person("session-owner@example.test", "Sari Owner", "owner"),
        "doomed_owner": Person("doomed-owner@example.test", "Dodi Owner", "owner"),
        "manager": Person("session-manager@example.test", "Maya Manager", "manager"),
        "receptionist": Person("session-reception@example.test", "Rina Receptionist", "receptionist"),
    }
    processes: list = []
    try:
        clinic_id = pg_server.psql(
            "INSERT INTO clinics (name, timezone) VALUES ('Sessions Clinic', 'Asia/Jakarta') RETURNING clinic_id",
            database=name,
        ).split()[0]
        manager = people["manager"]
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The first manager can only come from the CLI; it and the servers start side by side (each is a
            # child process that spends seconds importing).
            created = pool.submit(run_cli, *vetbook_command(
                "user", "create", "--email", manager.email, "--password", PASSWORD, "--role", "manager",
                "--name", manager.name, "--clinic", clinic_id), database_url=database_url)
            servers = start_apps_side_by_side(database_url, logs, "ab", processes, env=ENV)
            created.result()
        manager.user_id = CREATED.search(created.result().stdout).group(1)
        a, b = servers
        # Everyone else joins the way people do: owners sign up, the manager adds the receptionist.
        with httpx.Client(timeout=30) as client:
            for person in people.values():
                if person.role == "owner":
                    signed_up = client.post(a.url("/api/v1/auth/register"), json={
                        "name": person.name, "email": person.email, "phone": "+62 812 3456 7890", "password": PASSWORD})
                    assert signed_up.status_code == 201, signed_up.text
                    person.user_id = signed_up.json()["user_id"]
            login_page = client.get(b.url("/login"))
            client.post(b.url("/login"), data={"_csrf_token": CSRF_INPUT.search(login_page.text).group(1),
                                               "email": manager.email, "password": PASSWORD})
            staff_page = client.get(b.url("/staff"))
            assert staff_page.status_code == 200, staff_page.text
            receptionist = people["receptionist"]
            added = client.post(b.url("/staff"), data={
                "_csrf_token": CSRF_INPUT.search(staff_page.text).group(1), "name": receptionist.name,
                "email": receptionist.email, "phone": "+62 812 0000 1111", "password": PASSWORD,
                "clinic_id": clinic_id,
            })
            assert added.status_code == 303, added.text
        receptionist.user_id = pg_server.psql(
            f"SELECT user_id FROM users WHERE email = '{receptionist.email}'", database=name).strip()
        yield Cluster(a, b, database_url, logs, people, processes)
    finally:
        for process in processes:
            stop(process)


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[asyncpg.Connection]:
    async with connected(cluster.database_url) as connection:
        yield connection


# The ``http`` client (tests/accounts/conftest.py) relies on no cookie jar: each request names the cookies it
# carries, as a browser tab would hold them.
def cookies(**values: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{key}={value}" for key, value in values.items())}


async def log_in_with_form(http: httpx.AsyncClient, server: LiveServer, person: Person) -> str:
    """Log in through the HTML form of ``server``; returns the session cookie's value."""
    page = await http.get(server.url("/login"))
    csrf_cookie = page.cookies["vb_csrf"]
    response = await http.post(
        server.url("/login"),
        data={"_csrf_token": CSRF_INPUT.search(page.text).group(1), "email": person.email, "password": PASSWORD},
        headers=cookies(vb_csrf=csrf_cookie),
    )
    assert response.status_code == 303, response.text
    http.cookies.clear()  # keep nothing between requests: the tests pass the cookie themselves
    return response.cookies[SESSION_COOKIE]


async def post_form(http: httpx.AsyncClient, server: LiveServer, session: str, page: str, action: str) -> httpx.Response:
    """Submit a form of a signed-in page (CSRF token and cookie taken from ``page`` on the same server)."""
    loaded = await http.get(server.url(page), headers=cookies(vb_session=session))
    assert loaded.status_code == 200, loaded.text
    csrf_cookie = loaded.cookies["vb_csrf"]
    response = await http.post(
        server.url(action),
        data={"_csrf_token": CSRF_INPUT.search(loaded.text).group(1)},
        headers=cookies(vb_session=session, vb_csrf=csrf_cookie),
    )
    http.cookies.clear()
    return response


async def profile(http: httpx.AsyncClient, server: LiveServer, session: str) -> httpx.Response:
    response = await http.get(server.url("/profile"), headers=cookies(vb_session=session))
    http.cookies.clear()
    return response


def assert_greets(response: httpx.Response, person: Person) -> None:
    """The profile page answered, signed in as ``person``."""
    assert response.status_code == 200, response.text
    assert f"Hello, {person.name}" in response.text


def sent_to_login(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/login")


async def issue_token(http: httpx.AsyncClient, server: LiveServer, person: Person) -> str:
    response = await http.post(server.url("/api/v1/auth/token"), json={"email": person.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def me(http: httpx.AsyncClient, server: LiveServer, token: str) -> httpx.Response:
    return await http.get(server.url("/api/v1/me"), headers={"Authorization": f"Bearer {token}"})


async def working_session_and_token(http: httpx.AsyncClient, person: Person, made_on: tuple[LiveServer, LiveServer],
                                    used_on: tuple[LiveServer, LiveServer]) -> tuple[str, str]:
    """``person``'s web session (logged in through the form of ``made_on[0]``) and API token (issued by
    ``made_on[1]``), each checked to work on its server of ``used_on``."""
    session = await log_in_with_form(http, made_on[0], person)
    token = await issue_token(http, made_on[1], person)
    assert (await profile(http, used_on[0], session)).status_code == 200
    assert (await me(http, used_on[1], token)).status_code == 200
    return session, token


def assert_refused_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_web_session_works_everywhere_survives_a_restart_and_logout_ends_it_everywhere(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    owner = cluster.people["owner"]
    session = await log_in_with_form(http, cluster.a, owner)

    assert_greets(await profile(http, cluster.b, session), owner)

    cluster.restart_a()
    assert_greets(await profile(http, cluster.a, session), owner)

    logout = await post_form(http, cluster.b, session, "/profile", "/logout")
    assert logout.status_code == 303
    # The copy of the cookie still held for A is refused at once: the next request, not some later expiry.
    assert sent_to_login(await profile(http, cluster.a, session))
    assert sent_to_login(await profile(http, cluster.b, session))


async def test_api_token_issued_on_one_process_is_revoked_on_the_other(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    owner = cluster.people["owner"]
    token = await issue_token(http, cluster.a, owner)
    on_b = await me(http, cluster.b, token)
    assert on_b.status_code == 200
    assert on_b.json()["email"] == owner.email

    revoked = await http.delete(cluster.b.url("/api/v1/auth/token"), headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 204
    assert_refused_token(await me(http, cluster.a, token))
    assert_refused_token(await me(http, cluster.b, token))


async def test_expired_token_and_session_are_refused(
    cluster: Cluster, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    session, token = await working_session_and_token(http, cluster.people["owner"], made_on=(cluster.b, cluster.a),
                                                     used_on=(cluster.a, cluster.b))

    # Both expired an hour ago (created_at moves too: a session must expire after it starts).
    expired = await db.execute(
        "UPDATE auth_sessions SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' "
        "WHERE token_hash = ANY($1::bytea[])",
        [hashlib.sha256(secret.encode()).digest() for secret in (token, session)],
    )
    assert expired == "UPDATE 2"
    assert_refused_token(await me(http, cluster.b, token))
    assert sent_to_login(await profile(http, cluster.a, session))


async def test_deactivated_receptionist_loses_session_and_token_at_once(
    cluster: Cluster, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    receptionist, manager = cluster.people["receptionist"], cluster.people["manager"]
    desk_session, desk_token = await working_session_and_token(http, receptionist, made_on=(cluster.a, cluster.a),
                                                               used_on=(cluster.a, cluster.a))

    # The manager works on process B.
    manager_session = await log_in_with_form(http, cluster.b, manager)
    deactivated = await post_form(http, cluster.b, manager_session, "/staff",
                                  f"/staff/{receptionist.user_id}/deactivate")
    assert deactivated.status_code == 303 and deactivated.headers["location"] == "/staff"
    assert await db.fetchval("SELECT is_active FROM users WHERE user_id = $1", uuid.UUID(receptionist.user_id)) is False

    # On A, the receptionist's very next request is refused, page and API alike, and logging in again fails.
    assert sent_to_login(await profile(http, cluster.a, desk_session))
    assert_refused_token(await me(http, cluster.a, desk_token))
    relogin = await http.post(cluster.a.url("/api/v1/auth/token"),
                              json={"email": receptionist.email, "password": PASSWORD})
    assert relogin.status_code == 401

    # Reactivation lets them log in again, but does not bring the ended session back.
    reactivated = await post_form(http, cluster.b, manager_session, "/staff",
                                  f"/staff/{receptionist.user_id}/activate")
    assert reactivated.status_code == 303
    assert sent_to_login(await profile(http, cluster.a, desk_session))
    fresh_session = await log_in_with_form(http, cluster.a, receptionist)
    assert (await profile(http, cluster.b, fresh_session)).status_code == 200


async def test_switching_an_account_off_in_the_database_refuses_its_sessions_at_once(
    cluster: Cluster, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    # Not even revoking the sessions: every request checks that the person is still active.
    doomed = cluster.people["doomed_owner"]
    session, token = await working_session_and_token(http, doomed, made_on=(cluster.a, cluster.b),
                                                     used_on=(cluster.b, cluster.a))
    await db.execute("UPDATE users SET is_active = false WHERE user_id = $1", uuid.UUID(doomed.user_id))
    assert sent_to_login(await profile(http, cluster.b, session))
    assert_refused_token(await me(http, cluster.a, token))
    revoked = await db.fetchval("SELECT count(*) FROM auth_sessions WHERE user_id = $1 AND revoked_at IS NOT NULL",
                                uuid.UUID(doomed.user_id))
    assert revoked == 0
