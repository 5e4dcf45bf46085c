"""Login rate limits shared by every app process: two real processes (A and B) on one database.

The counters live in PostgreSQL (rate_limit_hits), so attempts sent alternately to A and B add up: a client
cannot get twice the attempts by talking to two workers. Windows are short here (seconds) so that a test can
also wait one out and see the limit recover.

Windows are fixed and aligned to multiples of their length in epoch seconds; a burst of attempts must fall in
one window, so each test first waits for a fresh window when too little of the current one is left.

Each test logs in from a client address of its own (RFC 5737 documentation addresses in X-Forwarded-For,
which uvicorn accepts from 127.0.0.1 because ``vetbook serve`` runs it with proxy headers on, as behind a
reverse proxy): the per-address windows of one test never see another test's attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT
from tests.conftest import cloned_database
from tests.servers import LiveServer, start_apps_side_by_side, stop
from web.core.embedded_postgres import LocalPostgres

ACCOUNT_LIMIT, ACCOUNT_WINDOW = 3, 6
ADDRESS_LIMIT, ADDRESS_WINDOW = 8, 10
LIMITS_ENV = {
    "VETBOOK_LOGIN_RATE_LIMIT": f"{ACCOUNT_LIMIT}/{ACCOUNT_WINDOW}",
    "VETBOOK_LOGIN_IP_RATE_LIMIT": f"{ADDRESS_LIMIT}/{ADDRESS_WINDOW}",
    # uvicorn's default, spelled out: the tests' X-Forwarded-For addresses are believed from 127.0.0.1 only.
    "FORWARDED_ALLOW_IPS": "127.0.0.1",
}
PASSWORD = "right-password-1"
WRONG_PASSWORD = "wrong-password-1"
WRONG_CREDENTIALS = "Email or password is wrong."
ACCOUNT_LIMITED = "Too many login attempts for this account. Wait a moment and try again."
ADDRESS_LIMITED = "Too many login attempts from your network. Wait a moment and try again."
API_EMAIL = "limited-api@example.test"
FORM_EMAIL = "limited-form@example.test"
NEIGHBOUR_EMAIL = "limited-neighbour@example.test"


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    database_url: str

    def other(self, server: LiveServer) -> LiveServer:
        return self.b if server is self.a else self.a


@pytest.fixture(scope="module")
def cluster(
    pg_server: LocalPostgres, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two app processes with short login windows on one database of this module, and three owners."""
    logs = tmp_path_factory.mktemp("rate-limit-servers")
    with cloned_database(pg_server, template_database, "limits") as database_url:
        started: list = []
        try:
            servers = start_apps_side_by_side(database_url, logs, "ab", started, env=LIMITS_ENV)
            # The owners sign up as people do (registration has no login limit to spend).
            for email in (API_EMAIL, FORM_EMAIL, NEIGHBOUR_EMAIL):
                signed_up = httpx.post(servers[0].url("/api/v1/auth/register"), timeout=30, json={
                    "name": "Limited Owner", "email": email, "phone": "+62 812 3456 7890", "password": PASSWORD})
                assert signed_up.status_code == 201, signed_up.text
            yield Cluster(servers[0], servers[1], database_url)
        finally:
            for process in started:
                stop(process)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # English pages: the assertions read their English texts (a client naming no language gets Indonesian).
    async with httpx.AsyncClient(timeout=30, headers={"Accept-Language": "en"}) as client:
        yield client


async def fresh_window(window: int, needed: float) -> None:
    """Wait for the next window when fewer than ``needed`` seconds are left in the current one."""
    left = window - time.time() % window
    if left < needed:
        await asyncio.sleep(left + 0.1)


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def retry_after(response: httpx.Response, window: int) -> int:
    value = int(response.headers["retry-after"])
    assert 1 <= value <= window, value
    return value


def assert_problem(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {"status": status, "title": "Too Many Requests" if status == 429 else "Unauthorized",
                               "detail": detail}


async def token_request(http: httpx.AsyncClient, server: LiveServer, email: str, password: str,
                        address: str) -> httpx.Response:
    return await http.post(server.url("/api/v1/auth/token"), json={"email": email, "password": password},
                           headers=from_address(address))


async def test_account_limit_is_shared_by_both_processes_and_recovers(cluster: Cluster, http: httpx.AsyncClient) -> None:
    address = "192.0.2.10"
    # Four attempts (three hash checks of ~0.4 s, two quick refusals) with a wide margin for a busy machine.
    await fresh_window(ACCOUNT_WINDOW, needed=4.5)
    servers = [cluster.a, cluster.b] * 2
    for server in servers[:ACCOUNT_LIMIT]:
        response = await token_request(http, server, API_EMAIL, WRONG_PASSWORD, address)
        assert_problem(response, 401, WRONG_CREDENTIALS)
    fourth = await token_request(http, servers[ACCOUNT_LIMIT], API_EMAIL, WRONG_PASSWORD, address)
    assert_problem(fourth, 429, ACCOUNT_LIMITED)
    retry_after(fourth, ACCOUNT_WINDOW)
    # While the account is over its limit, even the right password is refused, on either process.
    right_but_limited = await token_request(http, cluster.a, API_EMAIL, PASSWORD, address)
    assert_problem(right_but_limited, 429, ACCOUNT_LIMITED)
    wait = retry_after(right_but_limited, ACCOUNT_WINDOW)

    # One counter in PostgreSQL saw all five attempts, whichever process answered.
    connection = await asyncpg.connect(cluster.database_url)
    try:
        hits = await connection.fetchval(
            "SELECT hits FROM rate_limit_hits WHERE bucket = $1 ORDER BY window_start DESC LIMIT 1",
            f"login:account:{API_EMAIL}",
        )
    finally:
        await connection.close()
    assert hits == ACCOUNT_LIMIT + 2

    await asyncio.sleep(wait)
    recovered = await token_request(http, cluster.b, API_EMAIL, PASSWORD, address)
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["access_token"]


async def test_address_limit_counts_every_account_across_both_processes(
    cluster: Cluster, http: httpx.AsyncClient
) -> None:
    address = "198.51.100.20"
    # Eight hash checks (~0.4 s each), two at a time (one on A, one on B), then the ninth attempt.
    await fresh_window(ADDRESS_WINDOW, needed=6)
    for pair in range(ADDRESS_LIMIT // 2):
        # A different (unknown) account each time: only the per-address counter can add these up.
        answers = await asyncio.gather(*(
            token_request(http, server, f"guess-{pair}-{server.base_url[-5:]}@example.test", WRONG_PASSWORD, address)
            for server in (cluster.a, cluster.b)
        ))
        for response in answers:
            assert_problem(response, 401, WRONG_CREDENTIALS)
    # The ninth attempt is refused before any password is looked at, even a right one for a real account.
    ninth = await token_request(http, cluster.a, NEIGHBOUR_EMAIL, PASSWORD, address)
    assert_problem(ninth, 429, ADDRESS_LIMITED)
    retry_after(ninth, ADDRESS_WINDOW)
    # Another address is not affected: the same login from there succeeds at once, on the other process.
    elsewhere = await token_request(http, cluster.b, NEIGHBOUR_EMAIL, PASSWORD, "198.51.100.21")
    assert elsewhere.status_code == 200, elsewhere.text


async def test_login_form_shows_the_limit_message_in_the_page(cluster: Cluster, http: httpx.AsyncClient) -> None:
    address = "203.0.113.30"
    page = await http.get(cluster.a.url("/login"), headers=from_address(address))
    csrf = CSRF_INPUT.search(page.text).group(1)
    # The CSRF cookie (vb_csrf) from A is sent to both: the processes share the signing secret.
    assert http.cookies.get("vb_csrf")
    form = {"_csrf_token": csrf, "email": FORM_EMAIL, "password": WRONG_PASSWORD, "next": ""}
    await fresh_window(ACCOUNT_WINDOW, needed=4.5)
    servers = [cluster.a, cluster.b] * 2
    for server in servers[:ACCOUNT_LIMIT]:
        response = await http.post(server.url("/login"), data=form, headers=from_address(address))
        assert response.status_code == 401, response.text
        assert WRONG_CREDENTIALS in response.text
    limited = await http.post(servers[ACCOUNT_LIMIT].url("/login"), data=form, headers=from_address(address))
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/html")
    retry_after(limited, ACCOUNT_WINDOW)
    assert f'data-testid="login-error">{ACCOUNT_LIMITED}</p>' in limited.text
    # The form is still there, with the email kept, for when the wait is over.
    assert 'data-testid="login-form"' in limited.text
    assert f'value="{FORM_EMAIL}"' in limited.text
    assert "vb_session" not in limited.headers.get("set-cookie", "")
