"""Midtrans, offline: the real midtransclient against a local stand-in for Snap's HTTP API on 127.0.0.1,
and notifications recorded in Midtrans' shape (tests/payments/recorded/)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.payments.helpers import (
    PRICE,
    midtrans_signature,
    notification,
    pending_booking,
    recorded,
    scene,
    state_of,
)
from tests.payments.midtrans_standin import SnapStandIn, snap_standin
from web.payments import providers

SERVER_KEY = "SB-Mid-server-VetBookTestServerKey01"
RECORDED_KEY = "SB-Mid-server-vEtB0oKr3c0rd3dT3stK3y"
NOTIFICATIONS = "/api/v1/payments/midtrans/notifications"


@pytest.fixture
def snap(configure) -> Iterator[SnapStandIn]:
    """The stand-in, and the app configured for Midtrans with its URL."""
    with snap_standin(SERVER_KEY) as standin:
        configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY, VETBOOK_MIDTRANS_SNAP_URL=standin.snap_url,
                  VETBOOK_PAYMENT_GATEWAY_TIMEOUT="5")
        yield standin


async def _pay_with_midtrans(client: httpx.AsyncClient, conn: asyncpg.Connection, key: str | None = None):
    at = await scene(conn)
    booking = await pending_booking(conn, at)
    answer = await client.post(f"/api/v1/bookings/{booking['booking_id']}/payments",
                               json={"provider": "midtrans", "idempotency_key": key or f"snap-{uuid.uuid4()}"},
                               headers=at.owner.headers)
    return at, booking, answer


def test_recorded_notifications_carry_midtrans_signatures(configure) -> None:
    configure(VETBOOK_MIDTRANS_SERVER_KEY=RECORDED_KEY)
    midtrans = providers.get_provider("midtrans")
    for name in ("settlement", "pending", "expire", "deny"):
        payload = recorded(name)
        assert payload["signature_key"] == midtrans_signature(
            payload["order_id"], payload["status_code"], payload["gross_amount"], RECORDED_KEY), name
        assert midtrans.verify(payload), name
        assert not midtrans.verify({**payload, "gross_amount": "1.00"}), name
        assert not midtrans.verify({**payload, "order_id": str(uuid.uuid4())}), name
    configure(VETBOOK_MIDTRANS_SERVER_KEY="SB-Mid-server-some-other-merchant")
    assert not providers.get_provider("midtrans").verify(recorded("settlement"))


@pytest.mark.parametrize(("transaction_status", "fraud_status", "outcome"), [
    ("settlement", "accept", providers.Outcome.COMPLETED),
    ("capture", "accept", providers.Outcome.COMPLETED),
    ("capture", "challenge", providers.Outcome.NO_CHANGE),
    ("capture", "deny", providers.Outcome.FAILED),
    ("pending", "accept", providers.Outcome.NO_CHANGE),
    ("authorize", None, providers.Outcome.NO_CHANGE),
    ("deny", "deny", providers.Outcome.FAILED),
    ("cancel", "accept", providers.Outcome.FAILED),
    ("failure", None, providers.Outcome.FAILED),
    ("expire", "accept", providers.Outcome.EXPIRED),
    ("refund", "accept", providers.Outcome.NO_CHANGE),
])
def test_midtrans_statuses_map_to_our_outcomes(transaction_status, fraud_status, outcome) -> None:
    assert providers.midtrans_outcome(transaction_status, fraud_status) is outcome


async def test_snap_payment_then_recorded_notifications(client: httpx.AsyncClient, own_database: str,
                                                        conn: asyncpg.Connection, snap: SnapStandIn) -> None:
    at, booking, answer = await _pay_with_midtrans(client, conn)

    assert answer.status_code == 201, answer.text
    payment = answer.json()
    assert payment["provider"] == "midtrans"
    [request] = snap.requests
    assert request.authorization == "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()
    assert request.body["transaction_details"] == {"order_id": payment["payment_id"], "gross_amount": 150000}
    assert request.body["item_details"][0]["price"] == 150000
    assert request.body["customer_details"]["email"] == at.owner.row["email"]
    assert request.body["expiry"]["unit"] == "minutes" and 1 <= request.body["expiry"]["duration"] <= 30
    assert request.body["expiry"]["start_time"].endswith("+0700")
    stored = await conn.fetchrow("SELECT provider_payment_id, payment_url, payment_method FROM payment_records "
                                 "WHERE payment_id = $1", uuid.UUID(payment["payment_id"]))
    assert payment["payment_url"] == stored["payment_url"] == f"{snap.base_url}/snap/v4/redirection/" \
        f"{stored['provider_payment_id']}"
    assert stored["payment_method"] == "snap"

    pending = await client.post(NOTIFICATIONS, json=notification("pending", payment["payment_id"], PRICE, SERVER_KEY))
    assert (pending.status_code, pending.json()["changed"]) == (200, False)
    assert (await state_of(conn, booking["booking_id"]))["booking"]["status"] == "pending_payment"

    settlement = notification("settlement", payment["payment_id"], PRICE, SERVER_KEY)
    settled = await client.post(NOTIFICATIONS, json=settlement)
    replayed = await client.post(NOTIFICATIONS, json=settlement)
    late_expiry = await client.post(NOTIFICATIONS, json=notification("expire", payment["payment_id"], PRICE, SERVER_KEY))

    assert (settled.status_code, settled.json()["changed"], settled.json()["status"]) == (200, True, "completed")
    assert (replayed.status_code, replayed.json()["changed"]) == (200, False)
    assert (late_expiry.status_code, late_expiry.json()["changed"]) == (200, False)
    after = await state_of(conn, booking["booking_id"])
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("confirmed", "paid")
    assert after["payments"][0]["status"] == "completed"
    assert after["payments"][0]["payment_method"] == "bank_transfer"  # what the customer actually used
    gateway = json.loads(after["payments"][0]["metadata"])["gateway"]
    assert gateway["transaction_id"] == settlement["transaction_id"]
    assert [(row["previous_status"], row["new_status"]) for row in after["history"]] == [
        ("pending_payment", "confirmed")]


@pytest.mark.parametrize(("recorded_name", "payment_status"), [("expire", "expired"), ("deny", "failed")])
async def test_snap_payment_that_fails(client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection,
                                       snap: SnapStandIn, recorded_name: str, payment_status: str) -> None:
    _, booking, answer = await _pay_with_midtrans(client, conn)
    payment_id = answer.json()["payment_id"]

    failed = await client.post(NOTIFICATIONS, json=notification(recorded_name, payment_id, PRICE, SERVER_KEY))

    assert (failed.status_code, failed.json()["status"], failed.json()["changed"]) == (200, payment_status, True)
    after = await state_of(conn, booking["booking_id"])
    assert after["payments"][0]["status"] == payment_status
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("pending_payment", "pending")
    assert after["history"] == []


async def test_no_transaction_or_lock_is_held_while_the_gateway_is_called(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, snap: SnapStandIn) -> None:
    at = await scene(conn)
    booking = await pending_booking(conn, at)
    snap.hold = True
    request = asyncio.create_task(client.post(
        f"/api/v1/bookings/{booking['booking_id']}/payments",
        json={"provider": "midtrans", "idempotency_key": f"snap-{uuid.uuid4()}"}, headers=at.owner.headers))
    try:
        assert await asyncio.to_thread(snap.arrived.wait, 10), "the app never called the gateway"
        # The app is inside the gateway call now. Nothing of it may be open in the database...
        open_transactions = await conn.fetch(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL")
        assert open_transactions == []
        # ...and the booking and its pending payment can be locked by anyone at once.
        async with conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '1s'")
            locked = await conn.fetchval("SELECT count(*) FROM (SELECT 1 FROM bookings WHERE booking_id = $1 "
                                         "FOR UPDATE NOWAIT) AS b", booking["booking_id"])
            payments = await conn.fetchval("SELECT count(*) FROM (SELECT 1 FROM payment_records WHERE booking_id = $1 "
                                           "FOR UPDATE NOWAIT) AS p", booking["booking_id"])
        assert (locked, payments) == (1, 1)
    finally:
        snap.release.set()
    answer = await request
    assert answer.status_code == 201, answer.text
    assert answer.json()["payment_url"].startswith(snap.base_url)


async def test_a_failing_gateway_fails_the_attempt(client: httpx.AsyncClient, own_database: str,
                                                   conn: asyncpg.Connection, snap: SnapStandIn) -> None:
    snap.fail_with = 503
    key = f"snap-{uuid.uuid4()}"
    at, booking, answer = await _pay_with_midtrans(client, conn, key)

    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("application/problem+json")
    after = await state_of(conn, booking["booking_id"])
    assert after["payments"][0]["status"] == "failed"
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("pending_payment", "pending")
    # The same key names the failed attempt; a new attempt takes a new key and succeeds once Snap is back.
    same_key = await client.post(f"/api/v1/bookings/{booking['booking_id']}/payments",
                                 json={"provider": "midtrans", "idempotency_key": key}, headers=at.owner.headers)
    assert (same_key.status_code, same_key.json()["status"]) == (200, "failed")
    snap.fail_with = None
    retry = await client.post(f"/api/v1/bookings/{booking['booking_id']}/payments",
                              json={"provider": "midtrans", "idempotency_key": f"snap-{uuid.uuid4()}"},
                              headers=at.owner.headers)
    assert retry.status_code == 201 and retry.json()["status"] == "pending"


async def test_a_wrong_server_key_is_a_failed_attempt(client: httpx.AsyncClient, own_database: str,
                                                      conn: asyncpg.Connection, snap: SnapStandIn, configure) -> None:
    configure(VETBOOK_MIDTRANS_SERVER_KEY="SB-Mid-server-revoked")
    _, booking, answer = await _pay_with_midtrans(client, conn)

    assert answer.status_code == 502
    assert [request.authorization for request in snap.requests] == [
        "Basic " + base64.b64encode(b"SB-Mid-server-revoked:").decode()]
    assert (await state_of(conn, booking["booking_id"]))["payments"][0]["status"] == "failed"


async def test_midtrans_is_not_offered_without_a_server_key(client: httpx.AsyncClient, own_database: str,
                                                            conn: asyncpg.Connection, configure) -> None:
    configure(VETBOOK_MIDTRANS_SERVER_KEY="")
    _, booking, answer = await _pay_with_midtrans(client, conn)
    signed = notification("settlement", uuid.uuid4(), PRICE, "")

    assert answer.status_code == 422
    assert (await client.post(NOTIFICATIONS, json=signed)).status_code == 404
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 0
