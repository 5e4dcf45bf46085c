"""Login limits shared by every app process: two real processes (A and B) on one database.

What is counted lives in PostgreSQL (login_failures, rate_limit_hits), so attempts sent alternately to A and
B add up: a client cannot get twice the attempts by talking to two workers. No test waits a limit out: to see a
limit recover, a test moves the stored block or counter into the past by as much as the app said to wait (as
if that time had gone by) and checks that the next attempt is let through. The counters' fixed windows are
chosen so that none of them ends while this module runs (``window_around_now``), so a burst is never split
between two windows.

The rules (docs/security.md): only failed logins count; per (account, address) the first few failures are
free, then each one makes that pair wait twice as long as the last; per address, failures for any account
are capped by a high ceiling; a correct password from another address is never refused because of these
failures; sign-ups and API token requests are limited per address.

Each test logs in from client addresses of its own (RFC 5737 documentation addresses in X-Forwarded-For,
which uvicorn accepts from 127.0.0.1 because ``vetbook serve`` runs it with proxy headers on, as behind a
reverse proxy), so no test sees another test's counters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT
from tests.conftest import cloned_database, connected
from tests.servers import LiveServer, start_apps_side_by_side, stop
from web.core.embedded_postgres import LocalPostgres

FREE_FAILURES, FIRST_DELAY = 3, 15
ADDRESS_FAILURES = 6
SIGNUPS = 3
TOKENS = 12
PASSWORD = "right-password-1"
WRONG_PASSWORD = "wrong-password-1"
WRONG_CREDENTIALS = "Email or password is wrong."
PAIR_LIMITED = "Too many failed logins for this account. Try again in"
ADDRESS_LIMITED = "Too many failed logins from your network. Wait a few minutes and try again."
TOKEN_LIMITED = "Too many login attempts from your network. Wait a minute and try again."
SIGNUP_LIMITED = "Too many new accounts from your network. Wait a minute and try again."
EMAILS = ("delayed@example.test", "busy@example.test", "neighbour@example.test", "form@example.test",
          "tokens@example.test")


def window_around_now(at_least: int = 3600) -> int:
    """A length (seconds) for the per-address counters' windows whose current window began a quarter of it
    ago or more and ends half of it from now or later. Fixed windows start at whole multiples of their
    length since the epoch (web/core/rate_limit.py), so the length decides where the current one ends."""
    now = time.time()
    window = at_least
    while not window / 4 <= now % window <= window / 2:
        window += 1
    return window


def limits_env(window: int) -> dict[str, str]:
    return {
        "VETBOOK_LOGIN_FREE_FAILURES": str(FREE_FAILURES),
        "VETBOOK_LOGIN_FIRST_DELAY_SECONDS": str(FIRST_DELAY),
        "VETBOOK_LOGIN_MAX_DELAY_SECONDS": str(4 * FIRST_DELAY),
        "VETBOOK_LOGIN_IP_FAILURE_LIMIT": f"{ADDRESS_FAILURES}/{window}",
        "VETBOOK_SIGNUP_IP_RATE_LIMIT": f"{SIGNUPS}/{window}",
        "VETBOOK_TOKEN_IP_RATE_LIMIT": f"{TOKENS}/{window}",
        # uvicorn's default, spelled out: the tests' X-Forwarded-For addresses are believed from 127.0.0.1 only.
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
    }


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    database_url: str
    window: int  # seconds, of every per-address counter


@pytest.fixture(scope="module")
def cluster(
    pg_server: LocalPostgres, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two app processes with small login limits on one database of this module, and a few owners."""
    logs = tmp_path_factory.mktemp("rate-limit-servers")
    window = window_around_now()
    with cloned_database(pg_server, template_database, "limits") as database_url:
        started: list = []
        try:
            servers = start_apps_side_by_side(database_url, logs, "ab", started, env=limits_env(window))
            for number, email in enumerate(EMAILS):
                signed_up = httpx.post(servers[0].url("/api/v1/auth/register"), timeout=30, json={
                    "name": "Limited Owner", "email": email, "phone": "+62 812 3456 7890", "password": PASSWORD},
                    headers=from_address(f"192.0.2.{200 + number}"))
                assert signed_up.status_code == 201, signed_up.text
            yield Cluster(servers[0], servers[1], database_url, window)
        finally:
            for process in started:
                stop(process)


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def retry_after(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


def assert_problem(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["status"], body["title"]) == (status, "Too Many Requests" if status == 429 else "Unauthorized")
    assert body["detail"].startswith(detail), body["detail"]


async def token_request(http: httpx.AsyncClient, server: LiveServer, email: str, password: str,
                        address: str) -> httpx.Response:
    return await http.post(server.url("/api/v1/auth/token"), json={"email": email, "password": password},
                           headers=from_address(address))


async def failures_of(cluster: Cluster, email: str, address: str) -> int | None:
    async with connected(cluster.database_url) as connection:
        return await connection.fetchval(
            "SELECT failures FROM login_failures WHERE account = $1 AND client_address = $2", email, address)


async def let_the_wait_pass(cluster: Cluster, email: str, address: str, seconds: int) -> None:
    """Move the pair's block and last failure ``seconds`` into the past, as if the wait the app announced
    had gone by."""
    async with connected(cluster.database_url) as connection:
        moved = await connection.execute(
            "UPDATE login_failures SET blocked_until = blocked_until - make_interval(secs => $3), "
            "last_failed_at = last_failed_at - make_interval(secs => $3) "
            "WHERE account = $1 AND client_address = $2", email, address, float(seconds))
    assert moved == "UPDATE 1", moved


async def let_the_window_pass(cluster: Cluster, bucket: str) -> None:
    """Move the counter ``bucket`` (named as web/accounts counts it) one window into the past, as if its
    window had ended: the next hit starts a new window."""
    async with connected(cluster.database_url) as connection:
        moved = await connection.execute(
            "UPDATE rate_limit_hits SET window_start = window_start - make_interval(secs => $2) WHERE bucket = $1",
            bucket, float(cluster.window))
    # One row: every hit of the test, from either process, went to the one counter of one window.
    assert moved == "UPDATE 1", moved


async def test_failures_of_one_account_and_address_grow_a_delay_that_nobody_else_feels(
        cluster: Cluster, http: httpx.AsyncClient) -> None:
    email, guesser, owner_at_home = EMAILS[0], "192.0.2.10", "192.0.2.11"
    servers = [cluster.a, cluster.b] * 4
    # The free failures, alternately on A and B: one counter in PostgreSQL sees them all.
    for server in servers[:FREE_FAILURES]:
        assert_problem(await token_request(http, server, email, WRONG_PASSWORD, guesser), 401, WRONG_CREDENTIALS)
    assert await failures_of(cluster, email, guesser) == FREE_FAILURES
    # One more failure: now that pair waits FIRST_DELAY seconds, even with the right password.
    assert_problem(await token_request(http, cluster.a, email, WRONG_PASSWORD, guesser), 401, WRONG_CREDENTIALS)
    waiting = await token_request(http, cluster.b, email, PASSWORD, guesser)
    assert_problem(waiting, 429, PAIR_LIMITED)
    assert 1 <= retry_after(waiting) <= FIRST_DELAY

    # The owner at home is never refused because of the guesser's failures, on either process.
    for server in (cluster.a, cluster.b):
        at_home = await token_request(http, server, email, PASSWORD, owner_at_home)
        assert at_home.status_code == 200, at_home.text

    # Once the wait is over, the next failure of the pair is checked again (401) and doubles the wait.
    await let_the_wait_pass(cluster, email, guesser, retry_after(waiting))
    assert_problem(await token_request(http, cluster.b, email, WRONG_PASSWORD, guesser), 401, WRONG_CREDENTIALS)
    doubled = await token_request(http, cluster.a, email, PASSWORD, guesser)
    assert_problem(doubled, 429, PAIR_LIMITED)
    assert FIRST_DELAY < retry_after(doubled) <= 2 * FIRST_DELAY

    # Once the wait is over the right password works from there too, and the pair's failures are forgotten.
    await let_the_wait_pass(cluster, email, guesser, retry_after(doubled))
    recovered = await token_request(http, cluster.b, email, PASSWORD, guesser)
    assert recovered.status_code == 200, recovered.text
    assert await failures_of(cluster, email, guesser) is None


async def test_successful_logins_never_count(cluster: Cluster, http: httpx.AsyncClient) -> None:
    # Twice the free failures and more than the address ceiling, all successful: a family's shared phone, a
    # morning at a carrier's shared address.
    address = "192.0.2.20"
    for attempt in range(2 * ADDRESS_FAILURES):
        server = cluster.a if attempt % 2 else cluster.b
        response = await token_request(http, server, EMAILS[1], PASSWORD, address)
        assert response.status_code == 200, (attempt, response.text)
    assert await failures_of(cluster, EMAILS[1], address) is None


async def test_the_address_ceiling_counts_failures_for_any_account(cluster: Cluster, http: httpx.AsyncClient) -> None:
    address = "198.51.100.20"
    # Successes from the address first: they are not counted against it.
    assert (await token_request(http, cluster.a, EMAILS[2], PASSWORD, address)).status_code == 200
    for pair in range(ADDRESS_FAILURES // 2):
        # A different (unknown) account each time: only the per-address counter adds these up.
        answers = await asyncio.gather(*(
            token_request(http, server, f"guess-{pair}-{server.base_url[-5:]}@example.test", WRONG_PASSWORD, address)
            for server in (cluster.a, cluster.b)
        ))
        for response in answers:
            assert_problem(response, 401, WRONG_CREDENTIALS)
    # The next attempt is refused before any password is looked at, even a right one for a real account.
    refused = await token_request(http, cluster.a, EMAILS[2], PASSWORD, address)
    assert_problem(refused, 429, ADDRESS_LIMITED)
    assert 1 <= retry_after(refused) <= cluster.window
    # Another address is not affected: the same login from there succeeds at once, on the other process.
    elsewhere = await token_request(http, cluster.b, EMAILS[2], PASSWORD, "198.51.100.21")
    assert elsewhere.status_code == 200, elsewhere.text
    # When the window is over, the address may log in again.
    await let_the_window_pass(cluster, f"login-failures:ip:{address}")
    recovered = await token_request(http, cluster.b, EMAILS[2], PASSWORD, address)
    assert recovered.status_code == 200, recovered.text


async def test_the_login_form_shows_the_wait_in_the_page(cluster: Cluster, http: httpx.AsyncClient) -> None:
    address = "203.0.113.30"
    page = await http.get(cluster.a.url("/login"), headers=from_address(address))
    csrf = CSRF_INPUT.search(page.text).group(1)
    # The CSRF cookie (vb_csrf) from A is sent to both: the processes share the signing secret.
    assert http.cookies.get("vb_csrf")
    form = {"_csrf_token": csrf, "email": EMAILS[3], "password": WRONG_PASSWORD, "next": ""}
    servers = [cluster.a, cluster.b] * 3
    for server in servers[:FREE_FAILURES + 1]:
        response = await http.post(server.url("/login"), data=form, headers=from_address(address))
        assert response.status_code == 401, response.text
        assert WRONG_CREDENTIALS in response.text
    limited = await http.post(cluster.b.url("/login"), data={**form, "password": PASSWORD},
                              headers=from_address(address))
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/html")
    assert 1 <= retry_after(limited) <= FIRST_DELAY
    assert PAIR_LIMITED in limited.text and " s." in limited.text
    # The form is still there, with the email kept, for when the wait is over.
    assert 'data-testid="login-form"' in limited.text
    assert f'value="{EMAILS[3]}"' in limited.text
    assert "vb_session" not in limited.headers.get("set-cookie", "")


async def test_token_requests_are_limited_per_address(cluster: Cluster, http: httpx.AsyncClient) -> None:
    address = "203.0.113.40"
    for attempt in range(TOKENS):
        server = cluster.a if attempt % 2 else cluster.b
        assert (await token_request(http, server, EMAILS[4], PASSWORD, address)).status_code == 200
    limited = await token_request(http, cluster.a, EMAILS[4], PASSWORD, address)
    assert_problem(limited, 429, TOKEN_LIMITED)
    assert 1 <= retry_after(limited) <= cluster.window
    assert (await token_request(http, cluster.b, EMAILS[4], PASSWORD, "203.0.113.41")).status_code == 200
    # A new window gives the address its requests back.
    await let_the_window_pass(cluster, f"token:ip:{address}")
    assert (await token_request(http, cluster.b, EMAILS[4], PASSWORD, address)).status_code == 200


async def test_sign_ups_are_limited_per_address(cluster: Cluster, http: httpx.AsyncClient) -> None:
    address = "203.0.113.50"

    async def sign_up(server: LiveServer, number: int, at: str = address) -> httpx.Response:
        return await http.post(server.url("/api/v1/auth/register"), headers=from_address(at), json={
            "name": "Burst", "email": f"burst-{number}-{at}@example.test", "phone": "+62 812 0000 0000",
            "password": PASSWORD})

    answers = await asyncio.gather(*(sign_up(cluster.a if n % 2 else cluster.b, n) for n in range(SIGNUPS + 2)))
    assert sorted(answer.status_code for answer in answers) == [201] * SIGNUPS + [429, 429]
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert_problem(refused, 429, SIGNUP_LIMITED)
    # The sign-up page says the same in the page, with the form kept.
    page = await http.get(cluster.a.url("/signup"), headers=from_address(address))
    form = {"_csrf_token": CSRF_INPUT.search(page.text).group(1), "name": "Burst Page", "phone": "+62 812 0000 0000",
            "email": f"burst-page-{address}@example.test", "password": PASSWORD}
    on_page = await http.post(cluster.b.url("/signup"), data=form, headers=from_address(address))
    assert on_page.status_code == 429 and on_page.headers["content-type"].startswith("text/html")
    assert f'data-testid="signup-error">{SIGNUP_LIMITED}</p>' in on_page.text
    assert 'value="Burst Page"' in on_page.text
    assert (await sign_up(cluster.a, 99, at="203.0.113.51")).status_code == 201
    async with connected(cluster.database_url) as connection:
        made = await connection.fetchval("SELECT count(*) FROM users WHERE email LIKE $1", f"burst-%-{address}@%")
    assert made == SIGNUPS
    # A new window lets the address sign up again.
    await let_the_window_pass(cluster, f"signup:ip:{address}")
    assert (await sign_up(cluster.b, 100)).status_code == 201
