"""The sandbox gateway's payment page: only the payment's owner sees it; paying there goes over real HTTP
from the app's page to the app's notification endpoint (a live app process), as a gateway's call does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT, web_session
from tests.conftest import cloned_database, connected
from tests.db.factories import make_session, make_user, make_world
from tests.payments.helpers import started_payment, state_of
from tests.servers import LiveServer, running_app
from web.accounts.auth import SESSION_COOKIE


async def test_the_owner_sees_the_sandbox_page(client: httpx.AsyncClient, own_database: str,
                                               conn: asyncpg.Connection) -> None:
    at, _, payment_id = await started_payment(client, conn, "sandbox")
    await web_session(client, at.owner.row)

    page = await client.get(f"/sandbox/pay/{payment_id}")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-testid="sandbox-amount">Rp150.000<' in page.text
    assert 'data-testid="sandbox-pay"' in page.text and 'data-testid="sandbox-decline"' in page.text
    assert len(CSRF_INPUT.findall(page.text)) >= 2
    assert 'data-testid="sandbox-payment-status">pending<' in page.text


async def test_nobody_else_sees_or_uses_the_sandbox_page(client: httpx.AsyncClient, own_database: str,
                                                         conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await started_payment(client, conn, "sandbox")
    _, _, desk_payment_id = await started_payment(client, conn, "clinic")
    stranger = await make_user(conn, role="owner")
    before = await state_of(conn, booking["booking_id"])

    anonymous = await client.get(f"/sandbox/pay/{payment_id}")
    answers = {}
    for name, user in (("stranger", stranger), ("receptionist", at.receptionist.row), ("owner", at.owner.row)):
        client.cookies.clear()
        await web_session(client, user)
        token = CSRF_INPUT.search((await client.get("/login")).text).group(1)
        answers[name] = (
            (await client.get(f"/sandbox/pay/{payment_id}")).status_code,
            None if name == "owner" else
            (await client.post(f"/sandbox/pay/{payment_id}", data={"decision": "pay", "_csrf_token": token})).status_code,
            (await client.post(f"/sandbox/pay/{payment_id}", data={"decision": "maybe", "_csrf_token": token})).status_code,
        )
    owner_desk_payment = (await client.get(f"/sandbox/pay/{desk_payment_id}")).status_code
    no_token = await client.post(f"/sandbox/pay/{payment_id}", data={"decision": "pay"})

    assert (anonymous.status_code, anonymous.headers["location"]) == (303, f"/login?next=/sandbox/pay/{payment_id}")
    # (The owner's "pay" is tested against a live app below: in-process there is no server to notify.)
    assert answers == {"stranger": (404, 404, 404), "receptionist": (404, 404, 404), "owner": (200, None, 422)}
    assert owner_desk_payment == 404
    assert no_token.status_code == 403
    assert await state_of(conn, booking["booking_id"]) == before


# ------------------------------------------------------------------ over real HTTP, against a live app


@pytest.fixture(scope="module")
def live_database(pg_server, template_database: str) -> Iterator[str]:
    with cloned_database(pg_server, template_database, "pay") as url:
        yield url


@pytest.fixture(scope="module")
def live_app(live_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log_path: Path = tmp_path_factory.mktemp("payments-live") / "app.log"
    with running_app(live_database, log_path) as server:
        yield server


@pytest.fixture
async def live_conn(live_database: str) -> AsyncIterator[asyncpg.Connection]:
    async with connected(live_database) as connection:
        yield connection


async def _book_over_http(http: httpx.AsyncClient, conn: asyncpg.Connection) -> tuple[dict, dict, str]:
    """An owner (of a clinic of their own) books through the live app's API (hold, confirm) and starts a
    sandbox payment."""
    world = await make_world(conn)
    owner, pet, slot = world["owner"], world["pet"], world["slot"]
    bearer = {"Authorization": f"Bearer {await make_session(conn, owner, 'api', lasts=timedelta(hours=1))}"}
    held = await http.post("/api/v1/reservations", json={"slot_id": str(slot["slot_id"]), "pet_id": str(pet["pet_id"])},
                           headers=bearer)
    assert held.status_code == 201, held.text
    booking = await http.post(f"/api/v1/reservations/{held.json()['reservation_id']}/confirm",
                              json={"lock_token": held.json()["lock_token"]}, headers=bearer)
    assert booking.status_code == 201, booking.text
    payment = await http.post(f"/api/v1/bookings/{booking.json()['booking_id']}/payments",
                              json={"provider": "sandbox", "idempotency_key": f"live-{uuid.uuid4()}"}, headers=bearer)
    assert payment.status_code == 201, payment.text
    return owner, booking.json(), payment.json()["payment_url"]


async def _decide(http: httpx.AsyncClient, conn: asyncpg.Connection, owner: dict, payment_url: str,
                  decision: str) -> httpx.Response:
    """Open the sandbox page as the signed-in owner and press a button; follow the redirect."""
    http.cookies.set(SESSION_COOKIE, await make_session(conn, owner, "web", lasts=timedelta(hours=1)))
    page = await http.get(payment_url)
    assert page.status_code == 200, page.text
    token = CSRF_INPUT.search(page.text).group(1)
    pressed = await http.post(payment_url, data={"decision": decision, "_csrf_token": token})
    assert pressed.status_code == 303, pressed.text
    assert pressed.headers["location"] == payment_url.removeprefix(str(http.base_url).rstrip("/"))
    return await http.get(payment_url)


async def test_paying_on_the_sandbox_page_confirms_the_booking(live_app: LiveServer, live_conn: asyncpg.Connection) -> None:
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=20) as http:
        owner, booking, payment_url = await _book_over_http(http, live_conn)
        assert payment_url.startswith(f"{live_app.base_url}/sandbox/pay/")

        result = await _decide(http, live_conn, owner, payment_url, "pay")

    assert 'data-testid="sandbox-payment-status">completed<' in result.text
    assert 'data-testid="sandbox-booking-status">confirmed · payment paid<' in result.text
    after = await state_of(live_conn, uuid.UUID(booking["booking_id"]))
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("confirmed", "paid")
    assert after["payments"][0]["status"] == "completed"
    assert [(row["previous_status"], row["new_status"], row["change_reason"]) for row in after["history"]] == [
        ("pending_payment", "confirmed", "payment_received")]
    # The notification really travelled over HTTP to the app's endpoint.
    assert "POST /api/v1/payments/sandbox/notifications" in live_app.log()


async def test_declining_on_the_sandbox_page_fails_the_attempt(live_app: LiveServer, live_conn: asyncpg.Connection) -> None:
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=20) as http:
        owner, booking, payment_url = await _book_over_http(http, live_conn)

        result = await _decide(http, live_conn, owner, payment_url, "decline")

    assert 'data-testid="sandbox-payment-status">failed<' in result.text
    after = await state_of(live_conn, uuid.UUID(booking["booking_id"]))
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("pending_payment", "pending")
    assert after["payments"][0]["status"] == "failed"
    assert after["history"] == []
