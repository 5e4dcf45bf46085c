"""The sandbox gateway's payment page: only the payment's owner sees it; paying there goes over real HTTP
from the app's page to the app's notification endpoint (a live app process), as a gateway's call does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT, web_session
from tests.db.factories import local_start, make_clinic, make_pet, make_service, make_slot, make_user
from tests.payments.helpers import pending_booking, scene, state_of
from tests.servers import LiveServer, running_app
from web.accounts.auth import SESSION_COOKIE, token_hash


async def _sandbox_payment(client: httpx.AsyncClient, conn: asyncpg.Connection, provider: str = "sandbox"):
    at = await scene(conn)
    booking = await pending_booking(conn, at)
    answer = await client.post(f"/api/v1/bookings/{booking['booking_id']}/payments",
                               json={"provider": provider, "idempotency_key": f"attempt-{uuid.uuid4()}"},
                               headers=at.owner.headers)
    assert answer.status_code == 201, answer.text
    return at, booking, answer.json()["payment_id"]


async def test_the_owner_sees_the_sandbox_page(client: httpx.AsyncClient, own_database: str,
                                               conn: asyncpg.Connection) -> None:
    at, _, payment_id = await _sandbox_payment(client, conn)
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
    at, booking, payment_id = await _sandbox_payment(client, conn)
    _, _, desk_payment_id = await _sandbox_payment(client, conn, provider="clinic")
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
    name = f"pay_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name, template=template_database)
    try:
        yield pg_server.url(name)
    finally:
        pg_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def live_app(live_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log_path: Path = tmp_path_factory.mktemp("payments-live") / "app.log"
    with running_app(live_database, log_path) as server:
        yield server


async def _session(conn: asyncpg.Connection, user: dict, kind: str) -> str:
    """A web session or API token for ``user``, written as the app stores them (only the hash)."""
    secret = f"{kind}-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    await conn.execute("INSERT INTO auth_sessions (token_hash, user_id, kind, expires_at) VALUES ($1, $2, $3, $4)",
                       token_hash(secret), user["user_id"], kind, datetime.now(UTC) + timedelta(hours=1))
    return secret


async def _book_over_http(http: httpx.AsyncClient, conn: asyncpg.Connection, hour: int) -> tuple[dict, dict, str]:
    """An owner books through the live app's API (hold, confirm) and starts a sandbox payment."""
    clinic = await make_clinic(conn)
    service = await make_service(conn, clinic)
    slot = await make_slot(conn, clinic, service, None, start=local_start(clinic, days_ahead=4, hour=hour))
    owner = await make_user(conn, role="owner")
    pet = await make_pet(conn, owner)
    bearer = {"Authorization": f"Bearer {await _session(conn, owner, 'api')}"}
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
    http.cookies.set(SESSION_COOKIE, await _session(conn, owner, "web"))
    page = await http.get(payment_url)
    assert page.status_code == 200, page.text
    token = CSRF_INPUT.search(page.text).group(1)
    pressed = await http.post(payment_url, data={"decision": decision, "_csrf_token": token})
    assert pressed.status_code == 303, pressed.text
    assert pressed.headers["location"] == payment_url.removeprefix(str(http.base_url).rstrip("/"))
    return await http.get(payment_url)


async def test_paying_on_the_sandbox_page_confirms_the_booking(live_app: LiveServer, live_database: str) -> None:
    conn = await asyncpg.connect(live_database)
    try:
        async with httpx.AsyncClient(base_url=live_app.base_url, timeout=20) as http:
            owner, booking, payment_url = await _book_over_http(http, conn, hour=9)
            assert payment_url.startswith(f"{live_app.base_url}/sandbox/pay/")

            result = await _decide(http, conn, owner, payment_url, "pay")

        assert 'data-testid="sandbox-payment-status">completed<' in result.text
        assert 'data-testid="sandbox-booking-status">confirmed · payment paid<' in result.text
        after = await state_of(conn, uuid.UUID(booking["booking_id"]))
        assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("confirmed", "paid")
        assert after["payments"][0]["status"] == "completed"
        assert [(row["previous_status"], row["new_status"], row["change_reason"]) for row in after["history"]] == [
            ("pending_payment", "confirmed", "payment_received")]
        # The notification really travelled over HTTP to the app's endpoint.
        assert "POST /api/v1/payments/sandbox/notifications" in live_app.log()
    finally:
        await conn.close()


async def test_declining_on_the_sandbox_page_fails_the_attempt(live_app: LiveServer, live_database: str) -> None:
    conn = await asyncpg.connect(live_database)
    try:
        async with httpx.AsyncClient(base_url=live_app.base_url, timeout=20) as http:
            owner, booking, payment_url = await _book_over_http(http, conn, hour=11)

            result = await _decide(http, conn, owner, payment_url, "decline")

        assert 'data-testid="sandbox-payment-status">failed<' in result.text
        after = await state_of(conn, uuid.UUID(booking["booking_id"]))
        assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("pending_payment", "pending")
        assert after["payments"][0]["status"] == "failed"
        assert after["history"] == []
    finally:
        await conn.close()
