"""Refunds as a workflow (web/payments/refunds.py): requested with the cancellation, sent by the job, closed by the
gateway's answer or by a person who paid it back by hand; listed for the desk; shown to the owner."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import asyncpg
import httpx

from tests.accounts.helpers import CSRF_INPUT, web_session
from tests.payments.helpers import PRICE, notification, pending_booking, scene, start_payment, started_payment
from web.payments import refunds
from web.payments import services as payment_services
from web.settings import get_settings

SANDBOX_NOTIFICATIONS = "/api/v1/payments/sandbox/notifications"


async def _paid_with_sandbox(client: httpx.AsyncClient, conn: asyncpg.Connection):
    at, booking, payment_id = await started_payment(client, conn, "sandbox")
    settled = await client.post(SANDBOX_NOTIFICATIONS, json=notification(
        "settlement", payment_id, PRICE, get_settings().sandbox_server_key))
    assert settled.json()["status"] == "completed", settled.text
    return at, booking, payment_id


async def _cancel(client: httpx.AsyncClient, booking_id, by, reason: str = "customer_request") -> httpx.Response:
    current = await client.get(f"/api/v1/bookings/{booking_id}", headers=by.headers)
    return await client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=by.headers,
                             json={"reason": reason, "version": current.json()["version"]})


async def _page_as(client: httpx.AsyncClient, person, path: str) -> httpx.Response:
    """``path`` as a page, in a web session of ``person`` (pages take the session cookie, not a token)."""
    client.cookies.clear()
    await web_session(client, person.row)
    return await client.get(path, headers={"Accept-Language": "en"})


async def _refunds_of(conn: asyncpg.Connection, payment_id) -> list[dict]:
    rows = await conn.fetch("SELECT * FROM refunds WHERE payment_id = $1 ORDER BY created_at", uuid.UUID(str(payment_id)))
    return [dict(row) for row in rows]


async def test_a_cancelled_paid_booking_requests_its_refund_and_the_job_sends_it(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await _paid_with_sandbox(client, conn)

    cancelled = await _cancel(client, booking["booking_id"], at.owner)
    assert cancelled.status_code == 200, cancelled.text
    [requested] = await _refunds_of(conn, payment_id)
    # The standard policy: 90 % of what was paid, requested in the cancelling transaction, not sent yet.
    assert (requested["state"], requested["amount"], requested["reason"], requested["attempts"]) == (
        "requested", Decimal("135000.00"), "standard_cancellation", 0)
    assert requested["clinic_id"] == at.clinic["clinic_id"]
    assert requested["refund_key"] == refunds.refund_key_for(requested["refund_id"])

    summary = await refunds.send_due_refunds()
    again = await refunds.send_due_refunds()

    [sent] = await _refunds_of(conn, payment_id)
    assert (summary.taken, summary.succeeded) == (1, 1)
    assert again.taken == 0
    assert (sent["state"], sent["attempts"]) == ("succeeded", 1)
    assert sent["gateway_refund_id"] == f"sandbox-{sent['refund_key']}"
    assert sent["succeeded_at"] is not None
    # The owner's page says what became of it.
    page = await _page_as(client, at.owner, f"/bookings/{booking['booking_id']}")
    assert page.status_code == 200
    assert 'data-testid="refund-state" data-state="succeeded" data-amount="135000.00"' in page.text


async def test_a_refund_of_money_taken_at_the_desk_is_listed_and_closed_by_hand(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection) -> None:
    at = await scene(conn)
    booking = await pending_booking(conn, at)
    await payment_services.take_payment_at_desk(at.receptionist.user, booking["booking_id"])
    payment_id = await conn.fetchval("SELECT payment_id FROM bookings WHERE booking_id = $1", booking["booking_id"])
    assert payment_id is not None

    # The clinic cancels: everything paid goes back, and cash goes back by hand.
    cancelled = await _cancel(client, booking["booking_id"], at.receptionist, reason="clinic_request")
    assert cancelled.status_code == 200, cancelled.text
    [refund] = await _refunds_of(conn, payment_id)
    assert (refund["state"], refund["amount"], refund["reason"]) == ("manual", PRICE, "clinic_cancellation")
    assert "desk" in refund["manual_reason"]
    # The job has nothing to send.
    assert (await refunds.send_due_refunds()).taken == 0

    listed = await client.get(f"/api/v1/clinics/{at.clinic['clinic_id']}/refunds-to-pay-by-hand",
                              headers=at.receptionist.headers)
    assert [row["refund_id"] for row in listed.json()] == [str(refund["refund_id"])]
    page = await _page_as(client, at.receptionist, f"/desk/refunds?clinic={at.clinic['clinic_id']}")
    assert page.status_code == 200
    assert f'data-refund-id="{refund["refund_id"]}" data-state="manual"' in page.text
    assert at.owner.row["email"] in page.text
    # Another clinic's receptionist sees nothing of it.
    stranger = await scene(conn)
    assert (await client.get(f"/api/v1/clinics/{at.clinic['clinic_id']}/refunds-to-pay-by-hand",
                             headers=stranger.receptionist.headers)).status_code == 404
    assert (await client.post(f"/api/v1/refunds/{refund['refund_id']}/paid-by-hand", json={},
                              headers=stranger.receptionist.headers)).status_code == 404

    closed = await client.post(f"/api/v1/refunds/{refund['refund_id']}/paid-by-hand",
                               json={"note": "BCA transfer 0042"}, headers=at.receptionist.headers)
    repeated = await client.post(f"/api/v1/refunds/{refund['refund_id']}/paid-by-hand", json={},
                                 headers=at.receptionist.headers)

    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["paid_by_hand_by"]) == ("succeeded", str(at.receptionist.user_id))
    assert repeated.status_code == 200 and repeated.json() == closed.json()
    [after] = await _refunds_of(conn, payment_id)
    assert (after["state"], after["paid_by_hand_by"]) == ("succeeded", at.receptionist.user_id)
    assert json.loads(after["metadata"])["paid_by_hand_note"] == "BCA transfer 0042"
    assert (await client.get(f"/api/v1/clinics/{at.clinic['clinic_id']}/refunds-to-pay-by-hand",
                             headers=at.receptionist.headers)).json() == []
    owner_page = await _page_as(client, at.owner, f"/bookings/{booking['booking_id']}")
    assert 'data-testid="refund-state" data-state="succeeded"' in owner_page.text


async def test_marking_paid_a_refund_the_gateway_is_sending_is_refused(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await _paid_with_sandbox(client, conn)
    assert (await _cancel(client, booking["booking_id"], at.owner)).status_code == 200
    [refund] = await _refunds_of(conn, payment_id)

    refused = await client.post(f"/api/v1/refunds/{refund['refund_id']}/paid-by-hand", json={},
                                headers=at.receptionist.headers)
    listing = await _page_as(client, at.receptionist, f"/desk/refunds?clinic={at.clinic['clinic_id']}")
    assert 'data-testid="refunds-empty"' in listing.text  # 'requested' is the job's, not the desk's
    csrf = CSRF_INPUT.search(listing.text).group(1)
    page = await client.post(f"/desk/refunds/{refund['refund_id']}/paid",
                             data={"clinic": str(at.clinic["clinic_id"]), "_csrf_token": csrf})

    assert refused.status_code == 409
    assert "still being sent" in refused.json()["detail"]
    assert page.status_code == 409
    assert 'data-testid="refund-error"' in page.text
    [unchanged] = await _refunds_of(conn, payment_id)
    assert (unchanged["state"], unchanged["paid_by_hand_by"]) == ("requested", None)


async def test_money_taken_twice_for_one_booking_is_refunded_once_through_the_same_path(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection) -> None:
    at, booking, first = await started_payment(client, conn, "sandbox")
    second_answer = await start_payment(client, booking, "sandbox", f"sandbox-{uuid.uuid4()}", by=at.owner)
    assert second_answer.status_code == 201, second_answer.text
    second = second_answer.json()["payment_id"]
    key = get_settings().sandbox_server_key
    assert (await client.post(SANDBOX_NOTIFICATIONS, json=notification("settlement", first, PRICE, key))).status_code == 200

    twice = notification("settlement", second, PRICE, key)
    answers = [await client.post(SANDBOX_NOTIFICATIONS, json=twice) for _ in range(2)]

    assert [answer.json()["changed"] for answer in answers] == [True, False]
    [refund] = await _refunds_of(conn, second)
    assert (refund["state"], refund["amount"], refund["reason"]) == ("requested", PRICE, "paid_twice")
    assert await _refunds_of(conn, first) == []
    assert (await refunds.send_due_refunds()).succeeded == 1
    assert (await _refunds_of(conn, second))[0]["state"] == "succeeded"
