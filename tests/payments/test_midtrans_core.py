"""Midtrans' Core API (refunds and status reads), offline: the real midtransclient through MidtransProvider against
the local stand-in (tests/payments/midtrans_standin.py), whose answers follow tests/payments/recorded/.

No database here: the provider touches none (web/payments/refunds.py and reconciliation.py apply its answers).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.payments.helpers import midtrans_signature, recorded
from tests.payments.midtrans_standin import SnapStandIn, snap_standin
from web.payments import providers
from web.payments.providers import GatewayUnavailable, Outcome, RefundRequest, RefundResult

SERVER_KEY = "SB-Mid-server-VetBookTestServerKey01"
RECORDED_KEY = "SB-Mid-server-vEtB0oKr3c0rd3dT3stK3y"
JAKARTA = ZoneInfo("Asia/Jakarta")
REFUSED = "Merchant cannot modify the status of the transaction"


@pytest.fixture
def gateway(configure) -> Iterator[SnapStandIn]:
    """The stand-in, and the app configured for Midtrans with its Core API pointed at it (1 s timeout, so the
    delay switch of 3 s is a timeout)."""
    with snap_standin(SERVER_KEY) as standin:
        configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY, VETBOOK_MIDTRANS_API_URL=standin.base_url,
                  VETBOOK_MIDTRANS_SNAP_URL=standin.snap_url, VETBOOK_PAYMENT_GATEWAY_TIMEOUT="1")
        yield standin


def midtrans() -> providers.MidtransProvider:
    provider = providers.get_provider("midtrans")
    assert isinstance(provider, providers.MidtransProvider)
    return provider


def refund_request(payment_id: uuid.UUID, amount: str = "135000", key: str | None = None,
                   method: str | None = "gopay", paid_days_ago: float = 1) -> RefundRequest:
    return RefundRequest(
        refund_id=uuid.uuid4(), payment_id=payment_id, provider_payment_id="snap-token", payment_method=method,
        paid_at=datetime.now(JAKARTA) - timedelta(days=paid_days_ago), amount=Decimal(amount), currency="IDR",
        refund_key=key or f"{payment_id}-1", reason="standard_cancellation")


def settled(gateway: SnapStandIn, payment_type: str = "gopay") -> uuid.UUID:
    payment_id = uuid.uuid4()
    gateway.set_transaction(payment_id, "settlement", gross_amount=150000, payment_type=payment_type)
    return payment_id


# ------------------------------------------------------------------ which refunds Midtrans can take


NOW = datetime(2026, 12, 20, 12, 0, tzinfo=JAKARTA)


@pytest.mark.parametrize(("method", "days_ago", "refundable"), [
    ("credit_card", 29, True), ("credit_card", 31, False),
    ("gopay", 6.9, True), ("gopay", 7.1, False),
    ("shopeepay", 6.9, True), ("shopeepay", 7.1, False),
    ("qris", 6.9, True), ("qris", 7.1, False),
    ("dana", 44, True), ("dana", 46, False),
    ("ovo", 6.9, True), ("ovo", 7.1, False),
    ("kredivo", 13, True), ("kredivo", 15, False),
    ("akulaku", 13, True), ("akulaku", 15, False),
    ("bank_transfer", 0.01, False), ("echannel", 0.01, False), ("permata", 0.01, False),
    ("cstore", 0.01, False), ("bca_klikpay", 0.01, False),
])
def test_refund_blocker_knows_the_methods_and_their_windows(configure, method, days_ago, refundable) -> None:
    configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY)
    blocker = midtrans().refund_blocker(method, NOW - timedelta(days=days_ago), NOW)
    assert (blocker is None) is refundable, blocker
    if not refundable:
        assert method in blocker and "by hand" in blocker
        assert blocker.msgid != blocker  # a translatable message with its parameters, not a formatted string


def test_a_method_not_reported_yet_is_left_to_midtrans(configure) -> None:
    configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY)
    provider = midtrans()
    assert provider.refund_blocker("snap", NOW - timedelta(days=400), NOW) is None
    assert provider.refund_blocker(None, None, NOW) is None
    assert provider.refund_blocker("gopay", None, NOW) is None


# ------------------------------------------------------------------ refunds


async def test_a_refund_succeeds_once_per_refund_key(gateway: SnapStandIn) -> None:
    payment_id = settled(gateway)

    first = await midtrans().refund(refund_request(payment_id, key="rfd-key-1"))
    again = await midtrans().refund(refund_request(payment_id, key="rfd-key-1"))

    assert first == again
    assert (first.result, first.gateway_refund_id) == (RefundResult.SUCCEEDED, "1")
    assert gateway.refunds_created == 1
    assert [(r["order_id"], r["refund_key"], r["amount"], r["reason"]) for r in gateway.refunds] == [
        (str(payment_id), "rfd-key-1", 135000, "standard_cancellation")] * 2
    request = next(r for r in gateway.requests if r.path.endswith("/refund"))
    assert request.path == f"/v2/{payment_id}/refund"
    assert request.authorization == "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()
    # What Midtrans now says of the payment: partly refunded, by that amount.
    report = await midtrans().status(payment_id, None)
    assert (report.outcome, report.refunded_amount) == (Outcome.NO_CHANGE, Decimal("135000.00"))


async def test_two_sends_of_one_refund_at_once_make_one_refund(gateway: SnapStandIn) -> None:
    payment_id = settled(gateway)

    answers = await asyncio.gather(*(midtrans().refund(refund_request(payment_id, key="same-key")) for _ in range(4)))

    assert {(answer.result, answer.gateway_refund_id) for answer in answers} == {(RefundResult.SUCCEEDED, "1")}
    assert gateway.refunds_created == 1 and len(gateway.refunds) == 4


async def test_a_second_refund_key_is_a_second_refund_up_to_the_amount_paid(gateway: SnapStandIn) -> None:
    payment_id = settled(gateway)

    first = await midtrans().refund(refund_request(payment_id, amount="100000", key="k-1"))
    second = await midtrans().refund(refund_request(payment_id, amount="50000", key="k-2"))
    too_much = await midtrans().refund(refund_request(payment_id, amount="1", key="k-3"))

    assert [first.gateway_refund_id, second.gateway_refund_id] == ["1", "2"]
    assert (too_much.result, too_much.message) == (RefundResult.MANUAL, REFUSED)
    assert gateway.refunds_created == 2
    assert (await midtrans().status(payment_id, None)).refunded_amount == Decimal("150000.00")


@pytest.mark.parametrize("errors_in_body", [False, True])
async def test_a_refusal_is_manual_with_midtrans_words(gateway: SnapStandIn, errors_in_body: bool) -> None:
    payment_id = settled(gateway)
    gateway.refuse_refunds = True
    gateway.errors_in_body = errors_in_body  # Midtrans answers some errors as HTTP 200 with the code in the body

    answer = await midtrans().refund(refund_request(payment_id))

    assert (answer.result, answer.message, answer.gateway_refund_id) == (RefundResult.MANUAL, REFUSED, None)
    assert gateway.refunds_created == 0


async def test_a_refund_of_a_payment_midtrans_does_not_know_is_manual(gateway: SnapStandIn) -> None:
    answer = await midtrans().refund(refund_request(uuid.uuid4()))
    assert (answer.result, answer.message) == (RefundResult.MANUAL, "Transaction doesn't exist.")


async def test_a_method_midtrans_cannot_refund_is_manual_without_a_call(gateway: SnapStandIn) -> None:
    payment_id = settled(gateway, payment_type="bank_transfer")

    by_transfer = await midtrans().refund(refund_request(payment_id, method="bank_transfer"))
    too_late = await midtrans().refund(refund_request(payment_id, method="ovo", paid_days_ago=8))
    half_rupiah = await midtrans().refund(refund_request(payment_id, amount="100.50"))

    assert by_transfer.result is too_late.result is half_rupiah.result is RefundResult.MANUAL
    assert "bank_transfer" in by_transfer.message and "7 days" in too_late.message
    assert "whole rupiah" in half_rupiah.message
    assert gateway.requests == [] and gateway.refunds == []


async def test_a_failing_gateway_is_retried_with_the_same_key(gateway: SnapStandIn) -> None:
    payment_id = settled(gateway)
    gateway.core_fail_with = 503

    failed = await midtrans().refund(refund_request(payment_id))
    gateway.core_fail_with = None
    retried = await midtrans().refund(refund_request(payment_id))

    assert failed.result is RefundResult.RETRY and "503" in failed.message
    assert (retried.result, retried.gateway_refund_id) == (RefundResult.SUCCEEDED, "1")
    assert gateway.refunds_created == 1


async def test_a_timeout_is_retried_and_the_refund_made_meanwhile_is_not_made_twice(gateway: SnapStandIn) -> None:
    payment_id = settled(gateway)
    gateway.core_delay = 3  # longer than the client's 1 s: Midtrans made the refund, its answer never came

    timed_out = await midtrans().refund(refund_request(payment_id))
    gateway.core_delay = 0
    retried = await midtrans().refund(refund_request(payment_id))

    assert timed_out.result is RefundResult.RETRY and "Timeout" in timed_out.message
    assert (retried.result, retried.gateway_refund_id) == (RefundResult.SUCCEEDED, "1")
    assert gateway.refunds_created == 1 and len(gateway.refunds) == 2


async def test_an_answer_that_is_not_json_is_retried(gateway: SnapStandIn) -> None:
    payment_id = settled(gateway)
    gateway.not_json = True

    answer = await midtrans().refund(refund_request(payment_id))

    assert (answer.result, answer.message) == (RefundResult.RETRY, "Midtrans' answer was not JSON")


async def test_an_unreachable_gateway_is_retried(configure) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY, VETBOOK_MIDTRANS_API_URL=f"http://127.0.0.1:{port}",
              VETBOOK_PAYMENT_GATEWAY_TIMEOUT="1")

    answer = await midtrans().refund(refund_request(uuid.uuid4()))

    assert answer.result is RefundResult.RETRY and "ConnectionError" in answer.message
    with pytest.raises(GatewayUnavailable):
        await midtrans().status(uuid.uuid4(), None)


async def test_a_wrong_server_key_is_retried_not_paid_by_hand(gateway: SnapStandIn, configure) -> None:
    payment_id = settled(gateway)
    configure(VETBOOK_MIDTRANS_SERVER_KEY="SB-Mid-server-revoked")

    answer = await midtrans().refund(refund_request(payment_id))

    assert answer.result is RefundResult.RETRY and "401" in answer.message
    assert gateway.refunds_created == 0


# ------------------------------------------------------------------ status reads


@pytest.mark.parametrize(("transaction_status", "outcome"), [
    ("settlement", Outcome.COMPLETED), ("pending", Outcome.NO_CHANGE), ("expire", Outcome.EXPIRED),
    ("deny", Outcome.FAILED), ("cancel", Outcome.FAILED),
])
async def test_a_status_read_is_a_report(gateway: SnapStandIn, transaction_status: str, outcome: Outcome) -> None:
    payment_id = uuid.uuid4()
    gateway.set_transaction(payment_id, transaction_status, gross_amount=150000, payment_type="qris",
                            fraud_status="deny" if transaction_status == "deny" else "accept")

    report = await midtrans().status(payment_id, "snap-token")

    assert report.outcome is outcome
    assert (report.gross_amount, report.payment_method, report.refunded_amount) == (Decimal("150000.00"), "qris", None)
    assert report.details["transaction_status"] == transaction_status
    assert report.details["transaction_id"] == gateway.transactions[str(payment_id)]["transaction_id"]
    assert ("settlement_time" in report.details) is (transaction_status == "settlement")
    assert [request.path for request in gateway.requests] == [f"/v2/{payment_id}/status"]


@pytest.mark.parametrize("errors_in_body", [False, True])
async def test_a_payment_midtrans_does_not_know_reads_as_none(gateway: SnapStandIn, errors_in_body: bool) -> None:
    gateway.errors_in_body = errors_in_body
    assert await midtrans().status(uuid.uuid4(), None) is None


@pytest.mark.parametrize("switch", ["core_fail_with", "core_delay", "not_json", "wrong_server_key"])
async def test_a_status_read_without_a_usable_answer_raises(gateway: SnapStandIn, configure, switch: str) -> None:
    payment_id = settled(gateway)
    if switch == "core_fail_with":
        gateway.core_fail_with = 500
    elif switch == "core_delay":
        gateway.core_delay = 3
    elif switch == "not_json":
        gateway.not_json = True
    else:
        configure(VETBOOK_MIDTRANS_SERVER_KEY="SB-Mid-server-revoked")

    with pytest.raises(GatewayUnavailable):
        await midtrans().status(payment_id, None)


async def test_production_mode_also_uses_the_configured_api_url(gateway: SnapStandIn, configure) -> None:
    configure(VETBOOK_MIDTRANS_PRODUCTION="1")
    payment_id = settled(gateway)
    assert (await midtrans().status(payment_id, None)).outcome is Outcome.COMPLETED


def test_recorded_core_answers_have_midtrans_shape(configure) -> None:
    configure(VETBOOK_MIDTRANS_SERVER_KEY=RECORDED_KEY)
    status = recorded("status_settlement")
    assert status["signature_key"] == midtrans_signature(status["order_id"], status["status_code"],
                                                         status["gross_amount"], RECORDED_KEY)
    report = midtrans().report(status)
    assert (report.outcome, report.gross_amount, report.payment_method) == (
        Outcome.COMPLETED, Decimal("150000.00"), "gopay")
    refund = providers.MidtransProvider._refund_answer(recorded("refund_succeeded"))
    assert (refund.result, refund.gateway_refund_id) == (RefundResult.SUCCEEDED, "1")
    assert recorded("status_not_found")["status_code"] == "404"
    assert recorded("refund_refused")["status_message"] == REFUSED
