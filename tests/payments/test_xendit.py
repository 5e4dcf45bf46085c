"""Xendit, offline: the real xendit-python SDK against a local stand-in for Xendit's HTTP API on 127.0.0.1
(tests/payments/xendit_standin.py), and invoice callbacks recorded in Xendit's shape (tests/payments/recorded/),
through the app's HTTP API and its PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest

from tests.payments.helpers import PRICE, Scene, pending_booking, recorded, scene, start_payment, state_of
from tests.payments.xendit_standin import XenditStandIn, xendit_standin
from web.payments import providers, refunds, services
from web.payments.providers import GatewayUnavailable, Outcome, RefundRequest, RefundResult

SECRET_KEY = "xnd_development_VetBookTestSecretKey01"
CALLBACK_TOKEN = "vetbook-test-callback-token-5d41402abc4b2a76b9719d91"
CALLBACKS = "/api/v1/payments/xendit/notifications"


@pytest.fixture
def xendit(configure) -> Iterator[XenditStandIn]:
    """The stand-in, and the app configured for Xendit with its URL and the account's callback token."""
    with xendit_standin(SECRET_KEY) as standin:
        configure(VETBOOK_XENDIT_SECRET_KEY=SECRET_KEY, VETBOOK_XENDIT_CALLBACK_TOKEN=CALLBACK_TOKEN,
                  VETBOOK_XENDIT_API_URL=standin.base_url, VETBOOK_PAYMENT_GATEWAY_TIMEOUT="5")
        yield standin


def callback(name: str, invoice: dict, **changes: object) -> dict:
    """The recorded callback ``xendit_<name>`` re-addressed to ``invoice`` (its id, our payment id as
    external_id, its amount)."""
    payload = recorded(f"xendit_{name}")
    payload.update(id=invoice["id"], external_id=invoice["external_id"], amount=invoice["amount"])
    if "paid_amount" in payload:
        payload["paid_amount"] = invoice["amount"]
    payload.update(changes)
    return payload


def token(value: str = CALLBACK_TOKEN) -> dict[str, str]:
    return {"x-callback-token": value}


async def _pay_with_xendit(client: httpx.AsyncClient, conn: asyncpg.Connection,
                           at: Scene | None = None) -> tuple[Scene, dict, httpx.Response]:
    at = at or await scene(conn)
    booking = await pending_booking(conn, at)
    answer = await start_payment(client, booking, "xendit", f"xendit-{uuid.uuid4()}", by=at.owner)
    return at, booking, answer


async def _paid_with_xendit(client: httpx.AsyncClient, conn: asyncpg.Connection, standin: XenditStandIn,
                            method: str = "EWALLET", channel: str = "SHOPEEPAY"
                            ) -> tuple[Scene, dict, asyncpg.Record]:
    """A booking paid through Xendit (invoice, payment at the stand-in, callback): the scene, the booking and its
    payment."""
    at, booking, answer = await _pay_with_xendit(client, conn)
    assert answer.status_code == 201, answer.text
    invoice = standin.pay(standin.invoice_for(answer.json()["payment_id"])["id"], method=method, channel=channel)
    settled = await client.post(CALLBACKS, json=callback("paid_ewallet", invoice, payment_method=method,
                                                         payment_channel=channel), headers=token())
    assert (settled.status_code, settled.json()["changed"]) == (200, True), settled.text
    payment = await conn.fetchrow("SELECT * FROM payment_records WHERE payment_id = $1",
                                  uuid.UUID(answer.json()["payment_id"]))
    return at, booking, payment


async def everything(conn: asyncpg.Connection, booking_id: uuid.UUID) -> dict:
    """Every column of the booking, its payments (fee and update times included) and its history."""
    return {
        **await state_of(conn, booking_id),
        "booking_row": await conn.fetchval("SELECT row_to_json(b)::text FROM bookings b WHERE booking_id = $1",
                                           booking_id),
        "payment_rows": await conn.fetchval(
            "SELECT json_agg(p ORDER BY created_at)::text FROM payment_records p WHERE booking_id = $1", booking_id),
    }


def refund_request(payment: asyncpg.Record, amount: Decimal, key: str | None = None,
                   reason: str = "owner_cancelled") -> RefundRequest:
    """What the refund job sends for ``amount`` of ``payment`` (a payment_records row)."""
    return RefundRequest(
        refund_id=uuid.uuid4(), payment_id=payment["payment_id"], provider_payment_id=payment["provider_payment_id"],
        payment_method=payment["payment_method"], paid_at=payment["paid_at"], amount=amount,
        currency=payment["currency"], refund_key=key or f"vetbook-refund-{uuid.uuid4()}", reason=reason,
    )


# ------------------------------------------------------------------ callbacks, without the database


def test_recorded_callbacks_as_reports(xendit: XenditStandIn) -> None:
    provider = providers.get_provider("xendit")

    paid, ewallet, expired = (provider.report(recorded(f"xendit_{name}"))
                              for name in ("paid", "paid_ewallet", "expired"))

    assert (paid.outcome, paid.gross_amount, paid.payment_method, paid.fee) == (
        Outcome.COMPLETED, Decimal("150000"), "BANK_TRANSFER/BCA", Decimal("4440"))
    assert paid.details == {"id": "65f1c0a9e4b0d12a7c3b9e01", "status": "PAID", "payment_method": "BANK_TRANSFER",
                            "payment_channel": "BCA", "paid_at": "2026-11-20T03:12:47.318Z",
                            "external_id": "0b6f6c8e-3c2a-4e0f-9d5a-7d1e2f3a4b5c"}
    assert (ewallet.outcome, ewallet.payment_method, ewallet.fee) == (
        Outcome.COMPLETED, "EWALLET/SHOPEEPAY", Decimal("2775"))
    assert (expired.outcome, expired.gross_amount, expired.payment_method, expired.fee) == (
        Outcome.EXPIRED, None, None, None)
    assert provider.payment_reference(recorded("xendit_paid")) == "0b6f6c8e-3c2a-4e0f-9d5a-7d1e2f3a4b5c"
    assert provider.payment_reference({"external_id": 12}) is None
    # paid_amount is what was taken; the invoice's amount stands in only when Xendit leaves it out.
    without_paid_amount = {key: value for key, value in recorded("xendit_paid").items() if key != "paid_amount"}
    assert provider.report(without_paid_amount).gross_amount == Decimal("150000")
    # A fee that payment_records.transaction_fee cannot hold is not Xendit's: ignored, not a failure.
    assert provider.report({**recorded("xendit_paid"), "fees_paid_amount": 1e12}).fee is None
    assert provider.report({**recorded("xendit_paid"), "fees_paid_amount": -5}).fee is None
    assert len(provider.report({**recorded("xendit_paid"), "payment_channel": "X" * 80}).payment_method) == 30


@pytest.mark.parametrize(("status", "outcome"), [
    ("PAID", Outcome.COMPLETED), ("SETTLED", Outcome.COMPLETED), ("EXPIRED", Outcome.EXPIRED),
    ("PENDING", Outcome.NO_CHANGE), ("SOMETHING_NEW", Outcome.NO_CHANGE), (None, Outcome.NO_CHANGE),
])
def test_invoice_statuses_map_to_our_outcomes(xendit: XenditStandIn, status, outcome) -> None:
    assert providers.get_provider("xendit").outcome({"status": status}) is outcome


def test_the_callback_token_is_checked(xendit: XenditStandIn, configure) -> None:
    provider = providers.get_provider("xendit")
    payload = recorded("xendit_paid")

    assert provider.verify(payload, token())
    assert provider.verify(payload, {"X-Callback-Token": CALLBACK_TOKEN})
    assert not provider.verify(payload, {})
    assert not provider.verify(payload, None)
    assert not provider.verify(payload, token(""))
    assert not provider.verify(payload, token("wrong"))
    assert not provider.verify(payload, token(CALLBACK_TOKEN + "x"))
    assert not provider.verify(payload, token("tokén-with-non-ascii"))
    # Midtrans' signature in the body means nothing here.
    assert not provider.verify({**payload, "signature_key": "0" * 128}, {})
    configure(VETBOOK_XENDIT_CALLBACK_TOKEN="")
    assert not providers.get_provider("xendit").verify(payload, token(""))
    assert not providers.get_provider("xendit").verify(payload, token(CALLBACK_TOKEN))


# ------------------------------------------------------------------ paying, through the app


async def test_paying_with_xendit(client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection,
                                  xendit: XenditStandIn) -> None:
    at, booking, answer = await _pay_with_xendit(client, conn)

    assert answer.status_code == 201, answer.text
    payment = answer.json()
    assert (payment["provider"], payment["status"]) == ("xendit", "pending")
    [request] = xendit.requests
    assert (request.method, request.path) == ("POST", "/v2/invoices")
    assert request.authorization == "Basic " + base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    assert request.body["external_id"] == payment["payment_id"]
    assert request.body["amount"] == 150000
    assert request.body["currency"] == "IDR"
    assert request.body["payer_email"] == at.owner.row["email"]
    assert 1 <= request.body["invoice_duration"] <= 30 * 60
    invoice = xendit.invoice_for(payment["payment_id"])
    stored = await conn.fetchrow("SELECT provider_payment_id, payment_url, payment_method, transaction_fee "
                                 "FROM payment_records WHERE payment_id = $1", uuid.UUID(payment["payment_id"]))
    assert stored["provider_payment_id"] == invoice["id"]
    assert payment["payment_url"] == stored["payment_url"] == invoice["invoice_url"]
    assert (stored["payment_method"], stored["transaction_fee"]) == ("invoice", None)

    paid = xendit.pay(invoice["id"], method="EWALLET", channel="SHOPEEPAY", fee=2775)
    settled = await client.post(CALLBACKS, json=callback("paid_ewallet", paid, paid_at=paid["paid_at"]),
                                headers=token())

    assert (settled.status_code, settled.json()["changed"], settled.json()["status"]) == (200, True, "completed")
    after = await state_of(conn, booking["booking_id"])
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("confirmed", "paid")
    assert str(after["booking"]["payment_id"]) == payment["payment_id"]
    assert after["payments"][0]["status"] == "completed"
    assert after["payments"][0]["payment_method"] == "EWALLET/SHOPEEPAY"
    gateway = json.loads(after["payments"][0]["metadata"])["gateway"]
    assert gateway == {"id": invoice["id"], "status": "PAID", "payment_method": "EWALLET",
                       "payment_channel": "SHOPEEPAY", "paid_at": paid["paid_at"],
                       "external_id": payment["payment_id"]}
    assert [(row["previous_status"], row["new_status"]) for row in after["history"]] == [
        ("pending_payment", "confirmed")]
    assert await conn.fetchval("SELECT transaction_fee FROM payment_records WHERE payment_id = $1",
                               uuid.UUID(payment["payment_id"])) == Decimal("2775.00")


@pytest.mark.parametrize("headers", [{}, token("wrong"), token(CALLBACK_TOKEN[:-1]), {"x-callback-token": ""},
                                     {"x-callback-token-2": CALLBACK_TOKEN}])
async def test_a_callback_without_the_right_token_changes_nothing(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, xendit: XenditStandIn,
        headers: dict[str, str]) -> None:
    _, booking, answer = await _pay_with_xendit(client, conn)
    paid = xendit.pay(xendit.invoice_for(answer.json()["payment_id"])["id"])
    before = await everything(conn, booking["booking_id"])

    forged = await client.post(CALLBACKS, json=callback("paid_ewallet", paid), headers=headers)

    assert forged.status_code == 403
    assert forged.headers["content-type"].startswith("application/problem+json")
    after = await everything(conn, booking["booking_id"])
    assert after == before
    assert (after["booking"]["status"], after["payments"][0]["status"]) == ("pending_payment", "pending")
    assert await conn.fetchval("SELECT transaction_fee FROM payment_records WHERE payment_id = $1",
                               uuid.UUID(answer.json()["payment_id"])) is None


async def test_no_callback_is_taken_without_a_configured_token(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, xendit: XenditStandIn,
        configure) -> None:
    _, booking, answer = await _pay_with_xendit(client, conn)
    paid = xendit.pay(xendit.invoice_for(answer.json()["payment_id"])["id"])
    configure(VETBOOK_XENDIT_CALLBACK_TOKEN="")
    before = await everything(conn, booking["booking_id"])

    refused = [await client.post(CALLBACKS, json=callback("paid_ewallet", paid), headers=headers)
               for headers in ({}, token(""), token(CALLBACK_TOKEN))]

    assert [answer.status_code for answer in refused] == [403, 403, 403]
    assert await everything(conn, booking["booking_id"]) == before


async def test_a_replayed_callback_changes_nothing(client: httpx.AsyncClient, own_database: str,
                                                   conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    _, booking, answer = await _pay_with_xendit(client, conn)
    paid = xendit.pay(xendit.invoice_for(answer.json()["payment_id"])["id"])
    payload = callback("paid_ewallet", paid)
    first = await client.post(CALLBACKS, json=payload, headers=token())
    after_first = await everything(conn, booking["booking_id"])

    replayed = await client.post(CALLBACKS, json=payload, headers=token())
    late_expiry = await client.post(CALLBACKS, json=callback("expired", paid), headers=token())

    assert (first.status_code, first.json()["changed"]) == (200, True)
    assert (replayed.status_code, replayed.json()["changed"], replayed.json()["status"]) == (200, False, "completed")
    assert (late_expiry.status_code, late_expiry.json()["changed"]) == (200, False)
    assert await everything(conn, booking["booking_id"]) == after_first
    assert after_first["booking"]["status"] == "confirmed"


async def test_a_callback_with_another_amount_is_a_conflict(client: httpx.AsyncClient, own_database: str,
                                                            conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    _, booking, answer = await _pay_with_xendit(client, conn)
    paid = xendit.pay(xendit.invoice_for(answer.json()["payment_id"])["id"])
    before = await everything(conn, booking["booking_id"])

    less = await client.post(CALLBACKS, json=callback("paid_ewallet", paid, paid_amount=100000), headers=token())
    more = await client.post(CALLBACKS, json=callback("paid_ewallet", paid, amount=160000, paid_amount=160000),
                             headers=token())

    assert (less.status_code, more.status_code) == (409, 409)
    assert await everything(conn, booking["booking_id"]) == before


async def test_an_expired_invoice_expires_the_attempt(client: httpx.AsyncClient, own_database: str,
                                                      conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    _, booking, answer = await _pay_with_xendit(client, conn)
    expired = xendit.expire(xendit.invoice_for(answer.json()["payment_id"])["id"])

    result = await client.post(CALLBACKS, json=callback("expired", expired), headers=token())

    assert (result.status_code, result.json()["changed"], result.json()["status"]) == (200, True, "expired")
    after = await state_of(conn, booking["booking_id"])
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("pending_payment", "pending")
    assert after["payments"][0]["status"] == "expired"
    assert after["history"] == []


@pytest.mark.parametrize(("body", "status"), [
    ([1, 2, 3], 422),
    ({"status": "PAID", "amount": 150000}, 404),
    ({"status": "PAID", "external_id": "not-a-uuid", "amount": 150000}, 404),
    ({"status": "PAID", "external_id": str(uuid.uuid4()), "amount": 150000}, 404),
])
async def test_bad_callbacks_are_client_errors(client: httpx.AsyncClient, own_database: str, xendit: XenditStandIn,
                                               body: object, status: int) -> None:
    answer = await client.post(CALLBACKS, json=body, headers=token())

    assert answer.status_code == status


async def test_a_paid_callback_without_an_amount_is_refused(client: httpx.AsyncClient, own_database: str,
                                                            conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    _, booking, answer = await _pay_with_xendit(client, conn)
    paid = xendit.pay(xendit.invoice_for(answer.json()["payment_id"])["id"])
    before = await everything(conn, booking["booking_id"])

    refused = await client.post(CALLBACKS, json=callback("paid_ewallet", paid, amount="lots", paid_amount=None),
                                headers=token())

    assert 400 <= refused.status_code < 500
    assert await everything(conn, booking["booking_id"]) == before


async def test_a_failing_gateway_fails_the_attempt(client: httpx.AsyncClient, own_database: str,
                                                   conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    xendit.fail_with = 503
    _, booking, answer = await _pay_with_xendit(client, conn)

    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("application/problem+json")
    after = await state_of(conn, booking["booking_id"])
    assert after["payments"][0]["status"] == "failed"
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("pending_payment", "pending")


async def test_a_wrong_secret_key_is_a_failed_attempt(client: httpx.AsyncClient, own_database: str,
                                                      conn: asyncpg.Connection, xendit: XenditStandIn,
                                                      configure) -> None:
    configure(VETBOOK_XENDIT_SECRET_KEY="xnd_development_revoked")
    _, booking, answer = await _pay_with_xendit(client, conn)

    assert answer.status_code == 502
    assert [request.authorization for request in xendit.requests] == [
        "Basic " + base64.b64encode(b"xnd_development_revoked:").decode()]
    assert (await state_of(conn, booking["booking_id"]))["payments"][0]["status"] == "failed"


async def test_xendit_is_not_offered_without_a_secret_key(client: httpx.AsyncClient, own_database: str,
                                                          conn: asyncpg.Connection, configure) -> None:
    configure(VETBOOK_XENDIT_SECRET_KEY="", VETBOOK_XENDIT_CALLBACK_TOKEN=CALLBACK_TOKEN)
    _, booking, answer = await _pay_with_xendit(client, conn)
    callback_answer = await client.post(CALLBACKS, json=recorded("xendit_paid"), headers=token())

    assert answer.status_code == 422
    assert "xendit" not in providers.enabled_providers()
    assert callback_answer.status_code == 404
    assert await conn.fetchval("SELECT count(*) FROM payment_records") == 0


# ------------------------------------------------------------------ status reads (reconciliation)


async def test_status_reads_the_invoice(client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection,
                                        xendit: XenditStandIn) -> None:
    provider = providers.get_provider("xendit")
    _, booking, answer = await _pay_with_xendit(client, conn)
    payment_id = uuid.UUID(answer.json()["payment_id"])
    invoice = xendit.invoice_for(str(payment_id))

    waiting = await provider.status(payment_id, invoice["id"])
    xendit.pay(invoice["id"], method="QR_CODE", channel="QRIS", fee=1050)
    by_id = await provider.status(payment_id, invoice["id"])
    by_external_id = await provider.status(payment_id, None)
    unknown = await provider.status(payment_id, "000000000000000000000000")
    of_another_payment = await provider.status(uuid.uuid4(), invoice["id"])
    never_made = await provider.status(uuid.uuid4(), None)

    assert (waiting.outcome, waiting.gross_amount) == (Outcome.NO_CHANGE, None)
    assert (by_id.outcome, by_id.gross_amount, by_id.payment_method, by_id.fee) == (
        Outcome.COMPLETED, PRICE, "QR_CODE/QRIS", Decimal("1050"))
    assert by_external_id == by_id
    assert (unknown, of_another_payment, never_made) == (None, None, None)
    # A paid invoice's refunds are read too (none here).
    assert by_id.refunded_amount is None
    assert [(request.method, request.path) for request in xendit.requests[1:]] == [
        ("GET", f"/v2/invoices/{invoice['id']}"),
        ("GET", f"/v2/invoices/{invoice['id']}"), ("GET", "/refunds"),
        ("GET", "/v2/invoices"), ("GET", "/refunds"),
        ("GET", "/v2/invoices/000000000000000000000000"),
        ("GET", f"/v2/invoices/{invoice['id']}"),
        ("GET", "/v2/invoices")]

    # Reconciliation applies what it read through the notifications' path: a lost callback, settled.
    applied = await services.apply_gateway_report("xendit", payment_id, by_id)
    assert (applied["status"], applied["changed"]) == ("completed", True)
    after = await state_of(conn, booking["booking_id"])
    assert (after["booking"]["status"], after["payments"][0]["payment_method"]) == ("confirmed", "QR_CODE/QRIS")
    assert await conn.fetchval("SELECT transaction_fee FROM payment_records WHERE payment_id = $1",
                               payment_id) == Decimal("1050.00")


async def test_status_says_what_xendit_refunded(client: httpx.AsyncClient, own_database: str,
                                                conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    provider = providers.get_provider("xendit")
    _, _, payment = await _paid_with_xendit(client, conn, xendit)
    # More refunds than one page of Xendit's list holds, and one still pending (not returned yet).
    for _ in range(11):
        assert (await provider.refund(refund_request(payment, Decimal("1000")))).result is RefundResult.SUCCEEDED
    xendit.refund_status = "PENDING"
    assert (await provider.refund(refund_request(payment, Decimal("5000")))).result is RefundResult.SENT

    report = await provider.status(payment["payment_id"], payment["provider_payment_id"])

    assert (report.outcome, report.refunded_amount) == (Outcome.COMPLETED, Decimal("11000"))
    assert len([request for request in xendit.requests if (request.method, request.path) == ("GET", "/refunds")]) == 2


@pytest.mark.parametrize("trouble", ["503", "timeout", "bad key"])
async def test_status_raises_when_xendit_does_not_answer(xendit: XenditStandIn, configure, trouble: str) -> None:
    provider = providers.get_provider("xendit")
    if trouble == "503":
        xendit.fail_with = 503
    elif trouble == "timeout":
        configure(VETBOOK_PAYMENT_GATEWAY_TIMEOUT="1")
        xendit.delay_seconds = 30
    else:
        configure(VETBOOK_XENDIT_SECRET_KEY="xnd_development_revoked")

    with pytest.raises(GatewayUnavailable):
        await provider.status(uuid.uuid4(), "65f1c0a9e4b0d12a7c3b9e01")


# ------------------------------------------------------------------ refunds


async def test_a_refund_succeeds_once_for_its_key(client: httpx.AsyncClient, own_database: str,
                                                  conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    provider = providers.get_provider("xendit")
    _, _, payment = await _paid_with_xendit(client, conn, xendit)
    request = refund_request(payment, Decimal("135000.00"), reason="paid_twice")

    first = await provider.refund(request)
    again = await provider.refund(request)

    assert first.result is RefundResult.SUCCEEDED and first.gateway_refund_id
    assert again == first
    [refund] = xendit.refunds
    assert (refund["id"], refund["invoice_id"], refund["amount"]) == (
        first.gateway_refund_id, payment["provider_payment_id"], 135000)
    assert (refund["reason"], refund["reference_id"], refund["currency"]) == ("DUPLICATE", request.refund_key, "IDR")
    sent = [request for request in xendit.requests if request.path == "/refunds"]
    assert [item.idempotency_key for item in sent] == [request.refund_key, request.refund_key]
    assert sent[0].authorization == "Basic " + base64.b64encode(f"{SECRET_KEY}:".encode()).decode()


@pytest.mark.parametrize(("refund_status", "result"), [
    ("PENDING", RefundResult.SENT), ("FAILED", RefundResult.MANUAL), ("CANCELLED", RefundResult.MANUAL),
])
async def test_refund_statuses(client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection,
                               xendit: XenditStandIn, refund_status: str, result: RefundResult) -> None:
    _, _, payment = await _paid_with_xendit(client, conn, xendit)
    xendit.refund_status = refund_status

    answer = await providers.get_provider("xendit").refund(refund_request(payment, PRICE))

    assert answer.result is result
    assert answer.gateway_refund_id == xendit.refunds[0]["id"]
    if result is RefundResult.MANUAL:
        assert "pay it back by hand" in answer.message


def test_methods_xendit_cannot_refund(xendit: XenditStandIn) -> None:
    provider = providers.get_provider("xendit")
    now = datetime.now(UTC)
    day = timedelta(days=1)

    for method in ("BANK_TRANSFER/BCA", "BANK_TRANSFER/MANDIRI", "VIRTUAL_ACCOUNT", "RETAIL_OUTLET/ALFAMART",
                   "DIRECT_DEBIT/DD_BRI", "CALLBACK_VIRTUAL_ACCOUNT/BNI", "EWALLET/OVO", "EWALLET/ASTRAPAY",
                   "invoice", None):
        assert provider.refund_blocker(method, now - day, now), method
    assert "bank transfers" in provider.refund_blocker("BANK_TRANSFER/BCA", now, now)
    assert "OVO payments" in provider.refund_blocker("EWALLET/OVO", now, now)
    for method, window in (("EWALLET/SHOPEEPAY", 7), ("EWALLET/DANA", 7), ("QR_CODE/QRIS", 30),
                           ("CREDIT_CARD", 150), ("PAYLATER/KREDIVO", 14)):
        assert provider.refund_blocker(method, now - (window - 1) * day, now) is None, method
        late = provider.refund_blocker(method, now - (window + 1) * day, now)
        assert late and f"{window} days" in late, method
    assert provider.refund_blocker("EWALLET/SHOPEEPAY", None, now)


async def test_a_refund_xendit_refuses_is_manual(client: httpx.AsyncClient, own_database: str,
                                                 conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    provider = providers.get_provider("xendit")
    _, _, payment = await _paid_with_xendit(client, conn, xendit)
    xendit.refuse_refunds = "REFUND_NOT_SUPPORTED"

    refused = await provider.refund(refund_request(payment, PRICE))
    xendit.refuse_refunds = None
    with_cents = await provider.refund(refund_request(payment, Decimal("135000.50")))
    too_much = await provider.refund(refund_request(payment, PRICE * 2))

    assert refused.result is RefundResult.MANUAL
    assert "REFUND_NOT_SUPPORTED" in refused.message and "pay it back by hand" in refused.message
    assert with_cents.result is RefundResult.MANUAL and "whole rupiah" in with_cents.message
    assert too_much.result is RefundResult.MANUAL and "MAXIMUM_REFUND_AMOUNT_REACHED" in too_much.message
    assert xendit.refunds == []
    # The one with cents never reached Xendit.
    assert len([request for request in xendit.requests if request.path == "/refunds"]) == 2


async def test_a_refund_without_an_answer_is_retried_with_its_key(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, xendit: XenditStandIn,
        configure) -> None:
    provider = providers.get_provider("xendit")
    _, _, payment = await _paid_with_xendit(client, conn, xendit)
    request = refund_request(payment, Decimal("135000.00"))
    configure(VETBOOK_PAYMENT_GATEWAY_TIMEOUT="1")

    # Xendit made the refund, but its answer came after our timeout.
    xendit.delay_seconds = 30
    timed_out = await provider.refund(request)
    xendit.delay_seconds = 0
    xendit.fail_with = 503
    unavailable = await provider.refund(request)
    xendit.fail_with = None
    resent = await provider.refund(request)

    assert (timed_out.result, unavailable.result) == (RefundResult.RETRY, RefundResult.RETRY)
    assert "did not answer" in timed_out.message and "503" in unavailable.message
    assert resent.result is RefundResult.SUCCEEDED
    [refund] = xendit.refunds
    assert resent.gateway_refund_id == refund["id"]
    assert refund["amount"] == 135000



# ------------------------------------------------------------------ the refund workflow (web/payments/refunds.py)


async def _cancel(client: httpx.AsyncClient, at: Scene, booking: dict) -> None:
    """The owner cancels the booking (before the refund deadline: the policy returns money)."""
    current = await client.get(f"/api/v1/bookings/{booking['booking_id']}", headers=at.owner.headers)
    cancelled = await client.post(f"/api/v1/bookings/{booking['booking_id']}/cancel", headers=at.owner.headers,
                                  json={"reason": "customer_request", "version": current.json()["version"]})
    assert cancelled.status_code == 200, cancelled.text


async def test_a_cancelled_xendit_booking_is_refunded_once_by_the_job(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    at, booking, payment = await _paid_with_xendit(client, conn, xendit)
    await _cancel(client, at, booking)

    first = await refunds.send_due_refunds()
    second = await refunds.send_due_refunds()

    assert (first.taken, first.succeeded, second.taken) == (1, 1, 0)
    [row] = await conn.fetch("SELECT * FROM refunds WHERE payment_id = $1", payment["payment_id"])
    assert (row["provider"], row["state"], row["attempts"]) == ("xendit", "succeeded", 1)
    [refund] = xendit.refunds
    assert row["gateway_refund_id"] == refund["id"]
    assert (refund["invoice_id"], Decimal(refund["amount"])) == (payment["provider_payment_id"], row["amount"])
    assert refund["reason"] == "CANCELLATION"
    assert [request.idempotency_key for request in xendit.requests if request.path == "/refunds"] == [
        row["refund_key"]]


async def test_a_cancelled_booking_paid_by_bank_transfer_is_refunded_by_hand(
        client: httpx.AsyncClient, own_database: str, conn: asyncpg.Connection, xendit: XenditStandIn) -> None:
    at, booking, payment = await _paid_with_xendit(client, conn, xendit, method="BANK_TRANSFER", channel="BCA")
    await _cancel(client, at, booking)

    summary = await refunds.send_due_refunds()

    assert summary.taken == 0
    [row] = await conn.fetch("SELECT * FROM refunds WHERE payment_id = $1", payment["payment_id"])
    assert row["state"] == "manual"
    assert "bank transfers" in row["manual_reason"]
    assert xendit.refunds == []
    assert [request for request in xendit.requests if request.path == "/refunds"] == []
