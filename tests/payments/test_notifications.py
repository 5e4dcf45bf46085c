"""Gateway notifications (the sandbox's, signed the Midtrans way): applied once, in any order, only when
signed, and never reviving a booking that was cancelled meanwhile."""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx

from tests.db.factories import local_start, make_slot
from tests.payments.helpers import (
    PRICE,
    midtrans_signature,
    notification,
    start_payment,
    started_payment,
    state_of,
)
from web.booking import services as booking_services
from web.settings import get_settings

SANDBOX_NOTIFICATIONS = "/api/v1/payments/sandbox/notifications"


def _signed(name: str, payment_id: str, **changes: str) -> dict:
    return notification(name, payment_id, PRICE, get_settings().sandbox_server_key, **changes)


async def test_the_same_notification_twice_confirms_the_booking_once(client: httpx.AsyncClient, own_database: str,
                                                                     conn: asyncpg.Connection) -> None:
    _, booking, payment_id = await started_payment(client, conn, "sandbox")
    settlement = _signed("settlement", payment_id)

    first = await client.post(SANDBOX_NOTIFICATIONS, json=settlement)
    after_first = await state_of(conn, booking["booking_id"])
    second = await client.post(SANDBOX_NOTIFICATIONS, json=settlement)
    after_second = await state_of(conn, booking["booking_id"])

    assert (first.status_code, first.json()["changed"], first.json()["status"]) == (200, True, "completed")
    assert (second.status_code, second.json()["changed"], second.json()["status"]) == (200, False, "completed")
    assert after_second == after_first
    assert after_first["booking"]["status"] == "confirmed"
    assert after_first["booking"]["payment_status"] == "paid"
    assert str(after_first["booking"]["payment_id"]) == payment_id
    assert after_first["booking"]["version"] == booking["version"] + 1
    assert after_first["payments"][0]["status"] == "completed"
    assert after_first["payments"][0]["paid_at"] is not None
    # Exactly one history row for the change, by the system, saying which payment did it.
    assert [(row["previous_status"], row["new_status"]) for row in after_first["history"]] == [
        ("pending_payment", "confirmed")]
    history = after_first["history"][0]
    assert history["changed_by"] is None
    assert history["change_reason"] == "payment_received"
    assert json.loads(history["metadata"])["payment_id"] == payment_id
    assert json.loads(history["metadata"])["transaction_id"] == settlement["transaction_id"]


async def test_notifications_after_the_settlement_change_nothing(client: httpx.AsyncClient, own_database: str,
                                                                 conn: asyncpg.Connection) -> None:
    _, booking, payment_id = await started_payment(client, conn, "sandbox")
    assert (await client.post(SANDBOX_NOTIFICATIONS, json=_signed("settlement", payment_id))).status_code == 200
    settled = await state_of(conn, booking["booking_id"])

    late = {name: await client.post(SANDBOX_NOTIFICATIONS, json=_signed(name, payment_id))
            for name in ("pending", "deny", "expire")}

    assert {name: (answer.status_code, answer.json()["changed"], answer.json()["status"])
            for name, answer in late.items()} == {name: (200, False, "completed") for name in late}
    assert await state_of(conn, booking["booking_id"]) == settled


async def test_a_declined_attempt_fails_and_the_booking_keeps_waiting(client: httpx.AsyncClient, own_database: str,
                                                                      conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await started_payment(client, conn, "sandbox")
    before = await state_of(conn, booking["booking_id"])

    pending = await client.post(SANDBOX_NOTIFICATIONS, json=_signed("pending", payment_id))
    assert (pending.status_code, pending.json()["changed"]) == (200, False)
    assert await state_of(conn, booking["booking_id"]) == before
    denied = await client.post(SANDBOX_NOTIFICATIONS, json=_signed("deny", payment_id))
    retry = await start_payment(client, booking, "sandbox", f"retry-{uuid.uuid4()}", by=at.owner)

    assert (denied.status_code, denied.json()["changed"], denied.json()["status"]) == (200, True, "failed")
    after = await state_of(conn, booking["booking_id"])
    assert after["booking"] == before["booking"]
    assert after["history"] == []
    assert after["payments"][0]["status"] == "failed"
    assert json.loads(after["payments"][0]["metadata"])["gateway"]["transaction_status"] == "deny"
    assert retry.status_code == 201
    assert retry.json()["payment_id"] != payment_id


async def test_a_bad_signature_is_refused_and_changes_nothing(client: httpx.AsyncClient, own_database: str,
                                                              conn: asyncpg.Connection) -> None:
    _, booking, payment_id = await started_payment(client, conn, "sandbox")
    before = await state_of(conn, booking["booking_id"])
    good = _signed("settlement", payment_id)
    forged = {
        "signed with another key": notification("settlement", payment_id, PRICE, "guessed-key"),
        "amount changed after signing": {**good, "gross_amount": "1.00"},
        "status changed after signing": {**_signed("deny", payment_id), "transaction_status": "settlement",
                                         "fraud_status": "accept"},
        "no signature": {key: value for key, value in good.items() if key != "signature_key"},
        "signature not a string": {**good, "signature_key": 12345},
        "signature not ASCII": {**good, "signature_key": "é" * 128},
    }

    answers = {name: await client.post(SANDBOX_NOTIFICATIONS, json=payload) for name, payload in forged.items()}

    for name, answer in answers.items():
        assert answer.status_code == 403, name
        assert answer.headers["content-type"].startswith("application/problem+json"), name
        assert answer.json()["detail"] == "The notification's signature is not valid.", name
    assert await state_of(conn, booking["booking_id"]) == before


async def test_another_providers_key_does_not_sign_for_the_sandbox(client: httpx.AsyncClient, own_database: str,
                                                                   conn: asyncpg.Connection, configure) -> None:
    _, booking, payment_id = await started_payment(client, conn, "sandbox")
    configure(VETBOOK_MIDTRANS_SERVER_KEY="SB-Mid-server-another-gateway")
    before = await state_of(conn, booking["booking_id"])

    signed_by_midtrans = notification("settlement", payment_id, PRICE, "SB-Mid-server-another-gateway")
    to_sandbox = await client.post(SANDBOX_NOTIFICATIONS, json=signed_by_midtrans)
    # Correctly signed for Midtrans, but the payment is the sandbox's: Midtrans cannot settle it.
    to_midtrans = await client.post("/api/v1/payments/midtrans/notifications", json=signed_by_midtrans)

    assert to_sandbox.status_code == 403
    assert to_midtrans.status_code == 404
    assert await state_of(conn, booking["booking_id"]) == before


async def test_a_signed_notification_with_another_amount_changes_nothing(client: httpx.AsyncClient, own_database: str,
                                                                         conn: asyncpg.Connection) -> None:
    _, booking, payment_id = await started_payment(client, conn, "sandbox")
    before = await state_of(conn, booking["booking_id"])
    underpaid = notification("settlement", payment_id, PRICE - 1, get_settings().sandbox_server_key)

    answer = await client.post(SANDBOX_NOTIFICATIONS, json=underpaid)

    assert answer.status_code == 409
    assert await state_of(conn, booking["booking_id"]) == before


async def test_notifications_for_nothing_we_know(client: httpx.AsyncClient, own_database: str) -> None:
    key = get_settings().sandbox_server_key
    unknown_payment = notification("settlement", uuid.uuid4(), PRICE, key)
    not_our_order = {**unknown_payment, "order_id": "ORDER-101"}
    not_our_order["signature_key"] = midtrans_signature("ORDER-101", "200", f"{PRICE:.2f}", key)

    assert (await client.post(SANDBOX_NOTIFICATIONS, json=unknown_payment)).status_code == 404
    assert (await client.post(SANDBOX_NOTIFICATIONS, json=not_our_order)).status_code == 404
    assert (await client.post("/api/v1/payments/paypal/notifications", json=unknown_payment)).status_code == 404
    # The clinic's desk sends no notifications: nobody can settle a desk payment this way.
    assert (await client.post("/api/v1/payments/clinic/notifications", json=unknown_payment)).status_code == 404
    assert (await client.post(SANDBOX_NOTIFICATIONS, json=[1, 2])).status_code in (400, 422)


async def test_a_payment_after_the_deadline_is_refunded_and_the_booking_stays_cancelled(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection) -> None:
    _, booking, payment_id = await started_payment(client, conn, "sandbox")
    await conn.execute("UPDATE bookings SET payment_due_at = now() - interval '1 second' WHERE booking_id = $1",
                       booking["booking_id"])
    assert await booking_services.expire_unpaid_bookings() == 1
    expired = await state_of(conn, booking["booking_id"])
    assert (expired["booking"]["status"], expired["booking"]["payment_status"]) == ("cancelled", "failed")
    assert expired["payments"][0]["status"] == "expired"
    assert expired["remaining"] == 1  # the place went back to the slot

    settlement = _signed("settlement", payment_id)
    late = await client.post(SANDBOX_NOTIFICATIONS, json=settlement)
    replay = await client.post(SANDBOX_NOTIFICATIONS, json=settlement)

    assert (late.status_code, late.json()["changed"], late.json()["status"]) == (200, True, "refunded")
    assert (replay.status_code, replay.json()["changed"]) == (200, False)
    after = await state_of(conn, booking["booking_id"])
    refunded = after["payments"][0]
    assert refunded["status"] == "refunded"
    assert refunded["refund_amount"] == PRICE
    assert refunded["paid_at"] is not None and refunded["refunded_at"] is not None
    assert json.loads(refunded["metadata"])["refund_reason"] == "paid_after_cancellation"
    assert after["booking"]["status"] == "cancelled"
    assert after["booking"]["payment_status"] == "refunded"
    assert after["booking"]["refunded_amount"] == PRICE
    assert str(after["booking"]["payment_id"]) == payment_id
    assert after["remaining"] == 1  # not taken again: the booking was not revived
    assert [(row["previous_status"], row["new_status"]) for row in after["history"]] == [
        ("pending_payment", "cancelled")]


async def test_a_payment_follows_its_booking_when_it_was_rescheduled(client: httpx.AsyncClient, own_database: str,
                                                                     conn: asyncpg.Connection) -> None:
    at, booking, payment_id = await started_payment(client, conn, "sandbox")
    other_slot = await make_slot(conn, at.clinic, at.service, None, start=local_start(at.clinic, days_ahead=9, hour=15))
    moved = await client.post(f"/api/v1/bookings/{booking['booking_id']}/reschedule",
                              json={"slot_id": str(other_slot["slot_id"]), "version": booking["version"]},
                              headers=at.owner.headers)
    assert moved.status_code == 200, moved.text
    replacement_id = uuid.UUID(moved.json()["booking_id"])

    settled = await client.post(SANDBOX_NOTIFICATIONS, json=_signed("settlement", payment_id))

    assert (settled.status_code, settled.json()["status"]) == (200, "completed")
    old, new = await state_of(conn, booking["booking_id"]), await state_of(conn, replacement_id)
    assert (old["booking"]["status"], old["booking"]["payment_status"]) == ("rescheduled", "pending")
    assert (new["booking"]["status"], new["booking"]["payment_status"]) == ("confirmed", "paid")
    assert str(new["booking"]["payment_id"]) == payment_id
    assert [(row["previous_status"], row["new_status"]) for row in new["history"]] == [
        ("pending_payment", "confirmed")]


async def test_money_for_a_booking_already_paid_is_flagged_for_a_refund(client: httpx.AsyncClient, own_database: str,
                                                                        conn: asyncpg.Connection) -> None:
    at, booking, first_id = await started_payment(client, conn, "sandbox")
    second_id = (await start_payment(client, booking, "sandbox", f"second-{uuid.uuid4()}", by=at.owner)).json()[
        "payment_id"]
    assert (await client.post(SANDBOX_NOTIFICATIONS, json=_signed("settlement", first_id))).status_code == 200
    paid = await state_of(conn, booking["booking_id"])

    also_paid = await client.post(SANDBOX_NOTIFICATIONS, json=_signed("settlement", second_id))
    replay = await client.post(SANDBOX_NOTIFICATIONS, json=_signed("settlement", second_id))

    assert (also_paid.status_code, also_paid.json()["changed"]) == (200, True)
    assert (replay.status_code, replay.json()["changed"]) == (200, False)
    after = await state_of(conn, booking["booking_id"])
    assert after["booking"] == paid["booking"] and after["history"] == paid["history"]
    first_row, second_row = after["payments"]
    assert first_row == paid["payments"][0]
    # Only one settled payment per booking can exist: the second keeps its status and says what is owed.
    assert second_row["status"] == "pending"
    assert json.loads(second_row["metadata"])["refund_due"] == "150000.00"


async def test_a_signed_notification_with_a_non_finite_amount_is_refused_and_changes_nothing(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection) -> None:
    _, booking, payment_id = await started_payment(client, conn, "sandbox")
    before = await state_of(conn, booking["booking_id"])
    for amount in ("sNaN", "NaN", "Infinity", "-Infinity", "not-a-number"):
        payload = _signed("settlement", payment_id)
        payload["gross_amount"] = amount
        payload["signature_key"] = midtrans_signature(payload["order_id"], payload["status_code"], amount,
                                                      get_settings().sandbox_server_key)
        answer = await client.post(SANDBOX_NOTIFICATIONS, json=payload)
        assert answer.status_code == 422, (amount, answer.text)
        assert answer.json()["errors"] == [{"field": "gross_amount", "message": "Not an amount."}]
    assert await state_of(conn, booking["booking_id"]) == before
