"""Refunds sent to Midtrans (the real midtransclient against the local stand-in of its Core API): one cancellation
makes exactly one refund at the gateway, even when the job runs twice at once, dies after sending, or the
gateway answers too late and the refund is sent again with the same refund_key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal

import asyncpg
import httpx
import pytest

from tests.payments.helpers import PRICE, notification, pending_booking, scene
from tests.payments.midtrans_standin import SnapStandIn, snap_standin
from web.payments import refunds

SERVER_KEY = "SB-Mid-server-VetBookRefundTests01"
NOTIFICATIONS = "/api/v1/payments/midtrans/notifications"
# Seconds: the app's gateway timeout, and a gateway slower than it.
TIMEOUT = 2
SLOWER_THAN_TIMEOUT = 4


@pytest.fixture
def midtrans(configure) -> Iterator[SnapStandIn]:
    with snap_standin(SERVER_KEY) as standin:
        configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY, VETBOOK_MIDTRANS_SNAP_URL=standin.snap_url,
                  VETBOOK_MIDTRANS_API_URL=standin.base_url, VETBOOK_PAYMENT_GATEWAY_TIMEOUT=str(TIMEOUT))
        yield standin


async def _cancelled_after_paying(client: httpx.AsyncClient, conn: asyncpg.Connection, midtrans: SnapStandIn,
                                  method: str = "gopay") -> tuple[object, uuid.UUID]:
    """A booking paid through Midtrans Snap with ``method`` (the gateway knows the transaction), then cancelled
    by its owner before the refund deadline: the scene and the payment's id."""
    at = await scene(conn)
    booking = await pending_booking(conn, at)
    started = await client.post(f"/api/v1/bookings/{booking['booking_id']}/payments", headers=at.owner.headers,
                                json={"provider": "midtrans", "idempotency_key": f"snap-{uuid.uuid4()}"})
    assert started.status_code == 201, started.text
    payment_id = uuid.UUID(started.json()["payment_id"])
    midtrans.set_transaction(payment_id, "settlement", gross_amount=PRICE, payment_type=method)
    settled = await client.post(NOTIFICATIONS, json=notification("settlement", payment_id, PRICE, SERVER_KEY,
                                                                 payment_type=method))
    assert settled.json()["status"] == "completed", settled.text
    current = await client.get(f"/api/v1/bookings/{booking['booking_id']}", headers=at.owner.headers)
    cancelled = await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=at.owner.headers,
                                  json={"reason": "customer_request", "version": current.json()["version"]})
    assert cancelled.status_code == 200, cancelled.text
    return at, payment_id


async def _refund(conn: asyncpg.Connection, payment_id: uuid.UUID) -> dict:
    [row] = await conn.fetch("SELECT *, next_attempt_at > now() AS leased FROM refunds WHERE payment_id = $1",
                             payment_id)
    return dict(row)


async def _when_the_gateway_has_it(midtrans: SnapStandIn, count: int = 1) -> None:
    """Until the stand-in has received ``count`` refund requests (it does the work before any delay)."""
    for _ in range(400):
        if len(midtrans.refunds) >= count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the refund never reached the gateway")


async def _lease_ends(conn: asyncpg.Connection, payment_id: uuid.UUID) -> None:
    """What the passing of the lease (5 minutes) does to the refund: it is due again."""
    await conn.execute("UPDATE refunds SET next_attempt_at = now() - interval '1 second' WHERE payment_id = $1",
                       payment_id)


async def test_two_jobs_at_once_send_the_refund_once(client: httpx.AsyncClient, own_database: str,
                                                     conn: asyncpg.Connection, midtrans: SnapStandIn) -> None:
    _, payment_id = await _cancelled_after_paying(client, conn, midtrans)
    midtrans.core_delay = 1.0  # the first job is still waiting for the gateway when the second runs

    first = asyncio.create_task(refunds.send_due_refunds())
    await _when_the_gateway_has_it(midtrans)
    second = await refunds.send_due_refunds()
    first_summary = await first
    both_at_once = await asyncio.gather(refunds.send_due_refunds(), refunds.send_due_refunds())

    assert second.taken == 0
    assert (first_summary.taken, first_summary.succeeded) == (1, 1)
    assert [summary.taken for summary in both_at_once] == [0, 0]
    assert midtrans.refunds_created == 1
    assert [(sent["order_id"], sent["amount"]) for sent in midtrans.refunds] == [(str(payment_id), 135000)]
    refund = await _refund(conn, payment_id)
    assert (refund["state"], refund["attempts"], refund["amount"]) == ("succeeded", 1, Decimal("135000.00"))
    assert midtrans.refunds[0]["refund_key"] == refund["refund_key"]
    assert refund["gateway_refund_id"]


async def test_a_job_that_dies_after_sending_leaves_one_refund_at_the_gateway(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, midtrans: SnapStandIn) -> None:
    _, payment_id = await _cancelled_after_paying(client, conn, midtrans)
    midtrans.core_delay = 1.5

    dying = asyncio.create_task(refunds.send_due_refunds())
    await _when_the_gateway_has_it(midtrans)
    dying.cancel()  # the process dies: the gateway made the refund, its answer is never applied
    with pytest.raises(asyncio.CancelledError):
        await dying
    after_crash = await _refund(conn, payment_id)
    too_soon = await refunds.send_due_refunds()
    await _lease_ends(conn, payment_id)
    midtrans.core_delay = 0
    resent = await refunds.send_due_refunds()

    assert (after_crash["state"], after_crash["attempts"], after_crash["leased"]) == ("requested", 1, True)
    assert too_soon.taken == 0
    assert (resent.taken, resent.succeeded) == (1, 1)
    assert midtrans.refunds_created == 1
    assert len(midtrans.refunds) == 2
    assert len({sent["refund_key"] for sent in midtrans.refunds}) == 1
    refund = await _refund(conn, payment_id)
    assert (refund["state"], refund["attempts"]) == ("succeeded", 2)


async def test_a_refund_the_gateway_answered_too_late_is_retried_with_the_same_key(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, midtrans: SnapStandIn) -> None:
    _, payment_id = await _cancelled_after_paying(client, conn, midtrans)
    midtrans.core_delay = SLOWER_THAN_TIMEOUT

    timed_out = await refunds.send_due_refunds()
    waiting = await _refund(conn, payment_id)
    midtrans.core_delay = 0
    await _lease_ends(conn, payment_id)
    retried = await refunds.send_due_refunds()

    assert (timed_out.taken, timed_out.retry) == (1, 1)
    assert (waiting["state"], waiting["attempts"], waiting["leased"]) == ("requested", 1, True)
    assert waiting["last_error"]
    assert (retried.taken, retried.succeeded) == (1, 1)
    assert midtrans.refunds_created == 1
    assert [sent["refund_key"] for sent in midtrans.refunds] == [waiting["refund_key"]] * 2
    refund = await _refund(conn, payment_id)
    assert (refund["state"], refund["attempts"], refund["last_error"]) == ("succeeded", 2, None)


async def test_a_method_midtrans_cannot_refund_goes_to_the_desk_without_calling_it(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, midtrans: SnapStandIn) -> None:
    at, payment_id = await _cancelled_after_paying(client, conn, midtrans, method="bank_transfer")

    summary = await refunds.send_due_refunds()

    refund = await _refund(conn, payment_id)
    assert refund["state"] == "manual"
    assert "bank_transfer" in refund["manual_reason"]
    assert summary.taken == 0
    assert midtrans.refunds == []
    listed = await client.get(f"/api/v1/clinics/{at.clinic['clinic_id']}/refunds-to-pay-by-hand",
                              headers=at.receptionist.headers)
    assert [row["refund_id"] for row in listed.json()] == [str(refund["refund_id"])]


async def test_a_refund_midtrans_refuses_goes_to_the_desk_and_is_closed_by_hand(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, midtrans: SnapStandIn) -> None:
    at, payment_id = await _cancelled_after_paying(client, conn, midtrans)
    midtrans.refuse_refunds = True

    summary = await refunds.send_due_refunds()
    refused = await _refund(conn, payment_id)
    closed = await client.post(f"/api/v1/refunds/{refused['refund_id']}/paid-by-hand", json={},
                               headers=at.receptionist.headers)

    assert (summary.taken, summary.manual) == (1, 1)
    assert midtrans.refunds_created == 0
    assert refused["state"] == "manual"
    assert "cannot modify" in refused["manual_reason"]
    assert closed.status_code == 200, closed.text
    refund = await _refund(conn, payment_id)
    assert (refund["state"], refund["paid_by_hand_by"]) == ("succeeded", at.receptionist.user_id)
    # Nothing left for the job or the desk.
    assert (await refunds.send_due_refunds()).taken == 0
    listed = await client.get(f"/api/v1/clinics/{at.clinic['clinic_id']}/refunds-to-pay-by-hand",
                              headers=at.receptionist.headers)
    assert listed.json() == []
