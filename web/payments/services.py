"""The rules of paying for a booking: starting a payment, gateway notifications, and the clinic's desk.

- Every attempt carries the client's idempotency key: the same key answers the same payment, never a
  second one.
- No database transaction and no row lock is held while a gateway is called (alf.io's webhook deadlocked
  against its own checkout that way): the pending payment is written and committed first, the gateway is
  called, and its answer is stored by a single UPDATE afterwards.
- Notifications are verified by signature, then applied by guarded UPDATEs whose WHERE clause is the
  rule, so a replayed or out-of-order notification changes nothing twice.
- Locks are taken in the engine's order, the booking row first and then its payments (as cancel and the
  unpaid-expiry job do), so a notification never deadlocks against a cancellation.
- A completed payment confirms a booking that waits for payment (through the state machine, attributed
  by ``transaction_as``). Money that arrives for a booking that was meanwhile cancelled does not revive it:
  it is recorded and refunded in full on that payment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from web.accounts.auth import ROLE_OWNER, CurrentUser
from web.booking import services as engine
from web.booking import state
from web.booking.keys import locate_booking
from web.clinics.tables import Service
from web.core import shard_keys, sql
from web.core.audit import transaction_as
from web.core.errors import Conflict, DomainError, InvalidInput, NotFound
from web.core.messages import N_
from web.payments import providers, refunds
from web.payments import statements as q
from web.payments.providers import GatewayUnavailable, Outcome, PaymentRequest
from web.payments.tables import PaymentRecord

log = structlog.get_logger(__name__)

# A payment whose money was taken (and maybe returned): at most one per booking (the schema's
# payment_records_one_settled_per_booking).
SETTLED = ("completed", "refunded", "partially_refunded")

def _json(value: dict) -> str:
    return json.dumps(value, default=str)


def _now() -> datetime:
    return datetime.now(UTC)


async def locate_payment(payment_id: UUID) -> UUID | None:
    """The clinic of a payment: named by its id (web/core/shard_keys.py), or found by a search by id for an
    id of the old form. None when there is no such payment."""
    clinic_id = await shard_keys.clinic_of(payment_id)
    if clinic_id is None:
        clinic_id = await sql.fetchval(q.PAYMENT_CLINIC_BY_ID, payment_id)
    return clinic_id


def _public(row: asyncpg.Record | dict) -> dict:
    keys = ("payment_id", "booking_id", "amount", "currency", "payment_method", "payment_provider",
            "provider_payment_id", "status", "payment_url", "expiry_time", "paid_at", "refunded_at",
            "refund_amount", "created_at")
    return {key: row[key] for key in keys}


# ------------------------------------------------------------------ starting a payment


def _replay(existing: asyncpg.Record, actor: CurrentUser, booking_id: UUID, provider: str) -> dict:
    """The payment an idempotency key already names, if it was asked for by the same person, for the same
    booking and provider; a key reused for anything else is a conflict (and reveals nothing about it)."""
    if existing["user_id"] != actor.user_id or existing["booking_id"] != booking_id \
            or existing["payment_provider"] != provider:
        raise Conflict(N_("This idempotency key was already used for another payment. Use a new key."))
    return _public(existing)


# Why a payment cannot be marked paid, by its status.
PAYMENT_IS_SETTLED = {
    "completed": N_("This payment is already completed."),
    "failed": N_("This payment failed."),
    "refunded": N_("This payment was refunded."),
    "partially_refunded": N_("This payment was refunded."),
    "expired": N_("This payment expired."),
}


def _why_not_payable(booking: asyncpg.Record) -> str:
    if state.is_paid(booking):
        return N_("This booking is already paid.")
    return N_("A booking that is %(status)s cannot be paid.", status=state.status_words(booking["status"]))


async def create_payment(actor: CurrentUser, booking_id: UUID, provider_name: str,
                         idempotency_key: str) -> tuple[dict, bool]:
    """Start paying for ``booking_id`` with ``provider_name``. Returns (payment, created): ``created`` is
    False when ``idempotency_key`` was seen before, and then the payment is the one it named.

    Only the booking's owner may pay (404 for anyone else); the booking must wait for payment and its
    deadline must not have passed (409). The pending payment (amount = the booking's final amount) is
    committed in one short transaction; the gateway is called after that, outside any transaction, and
    its id and payment page are stored afterwards (a repeat of the key while that call is still running
    answers the payment as it is, still without its page). A gateway that fails marks the attempt failed
    (502); the owner then tries again with a new key. Choosing the clinic's desk moves the booking's payment
    deadline to the visit's start, because the money is taken there."""
    if actor.role != ROLE_OWNER:
        raise NotFound(N_("No such booking."))
    try:
        provider = providers.get_provider(provider_name)
    except NotFound:
        raise InvalidInput({"provider": N_("Choose one of: ") + ", ".join(providers.enabled_providers()) + "."},
                           detail="This payment method is not available.") from None
    key = await locate_booking(booking_id)
    if key is None:
        raise NotFound(N_("No such booking."))
    clinic_id = key.clinic_id
    existing = await sql.fetchrow(q.PAYMENT_BY_KEY, clinic_id, idempotency_key)
    if existing is not None:
        return _replay(existing, actor, booking_id, provider_name), False

    async with transaction_as(actor.user_id, reason="payment_started"):
        booking = await engine.booking_for_update(booking_id)
        if booking is None or booking["user_id"] != actor.user_id:
            raise NotFound(N_("No such booking."))
        if booking["status"] != state.PENDING_PAYMENT:
            raise Conflict(_why_not_payable(booking))
        due = booking["payment_due_at"]
        if due is not None and due <= _now():
            raise Conflict(N_("The time to pay for this booking is over; its place is being released."))
        if provider.paid_at_visit:
            due = booking["start_time"]
            await engine.set_payment_due(booking, due)
        payment = await sql.fetchrow(
            q.INSERT_PAYMENT, clinic_id, shard_keys.new_id_today(clinic_id), booking_id, booking["created_at"],
            booking["final_amount"], booking["currency"], provider.payment_method, provider.name, due,
            idempotency_key,
        )
        service = await Service.select(Service.name).where(Service.service_id == booking["service_id"]).first()
        service_name = service["name"]
    if payment is None:
        # The same key was committed by a concurrent request meanwhile.
        existing = await sql.fetchrow(q.PAYMENT_BY_KEY, clinic_id, idempotency_key)
        return _replay(existing, actor, booking_id, provider_name), False

    # Outside any transaction from here on: the gateway may take seconds.
    try:
        started = await provider.start(PaymentRequest(
            payment_id=payment["payment_id"], booking_id=booking_id, amount=payment["amount"],
            currency=payment["currency"], expires_at=due or booking["start_time"], item_name=service_name,
            customer_name=actor.name, customer_email=actor.email,
        ))
    except GatewayUnavailable as exc:
        await sql.execute(q.FAIL_PAYMENT, clinic_id, payment["payment_id"], "failed",
                          _json({"gateway_error": exc.detail, "failed_at": _now().isoformat()}))
        raise
    if started.provider_payment_id is None and started.payment_url is None:
        return _public(payment), True
    stored = await sql.fetchrow(q.STORE_STARTED, clinic_id, payment["payment_id"], started.provider_payment_id,
                                started.payment_url, started.expires_at)
    return _public(stored), True


# ------------------------------------------------------------------ gateway notifications


async def handle_notification(provider_name: str, payload: dict[str, Any],
                              headers: Mapping[str, str] | None = None) -> dict:
    """Apply a gateway's notification. It is verified first (403 and nothing changes when its signature or
    token is wrong or missing); the payment is the one it names for this provider (404 otherwise). Then
    ``apply_gateway_report``. Answers what the payment is now, and whether this notification changed it."""
    try:
        provider = providers.get_provider(provider_name)
    except NotFound:
        raise NotFound(N_("No such payment provider.")) from None
    if not provider.sends_notifications:
        raise NotFound(N_("This provider sends no notifications."))
    if not provider.verify(payload, headers or {}):
        raise DomainError(N_("The notification's signature is not valid."), status=403)
    try:
        payment_id = UUID(provider.payment_reference(payload) or "")
    except ValueError:
        raise NotFound(N_("No such payment.")) from None
    return await apply_gateway_report(provider.name, payment_id, provider.report(payload))


async def apply_gateway_report(provider_name: str, payment_id: UUID, report: providers.GatewayReport) -> dict:
    """What a gateway says about a payment (a verified notification, or a status read by reconciliation),
    applied once: money taken completes the payment and confirms its booking; a failure or expiry ends a
    waiting payment; anything else changes nothing. Each step is a guarded UPDATE, so a replay, a 'pending'
    after a 'settlement', or a failure after the money was taken changes nothing. A fee the gateway reports
    is kept on the payment (``transaction_fee``). 404 when ``provider_name`` has no such payment; 409 when
    the amount taken is not the payment's."""
    clinic_id = await locate_payment(payment_id)
    payment = None
    if clinic_id is not None:
        payment = await PaymentRecord.select(PaymentRecord.payment_id, PaymentRecord.amount, PaymentRecord.status).where(
            (PaymentRecord.clinic_id == clinic_id) & (PaymentRecord.payment_id == payment_id)
            & (PaymentRecord.payment_provider == provider_name)).first()
    if payment is None:
        raise NotFound(N_("No such payment."))
    outcome = report.outcome
    changed = False
    if outcome is Outcome.COMPLETED:
        if report.gross_amount is None:
            raise InvalidInput({"gross_amount": N_("Not an amount.")})
        if report.gross_amount != payment["amount"]:
            log.error("payment notification amount mismatch", payment_id=str(payment_id), expected=str(payment["amount"]),
                      notified=str(report.gross_amount))
            raise Conflict(N_("The notified amount does not match the payment."))
        changed = await _complete(clinic_id, payment_id, None, report.details, report.payment_method)
    elif outcome in (Outcome.FAILED, Outcome.EXPIRED):
        changed = await sql.fetchrow(q.FAIL_PAYMENT, clinic_id, payment_id, outcome.value,
                                     _json({"gateway": report.details})) is not None
    if report.fee is not None:
        await sql.execute(q.STORE_FEE, clinic_id, payment_id, report.fee)
    status = (await PaymentRecord.select(PaymentRecord.status).where(
        (PaymentRecord.clinic_id == clinic_id) & (PaymentRecord.payment_id == payment_id)).first())["status"]
    return {"payment_id": payment_id, "status": status, "changed": changed}


async def _complete(clinic_id: UUID, payment_id: UUID, actor_id: UUID | None, details: dict, method: str | None,
                    at_desk: bool = False) -> bool:
    """Record that the money of ``payment_id`` was taken, and what that does to its booking. Returns
    whether anything changed (False for a payment already settled: a replay).

    - booking waiting for payment: the payment completes, the booking becomes confirmed and paid (the
      state machine's pending_payment → confirmed; the history row names ``actor_id`` and the payment);
    - booking waiting for another amount (it was moved to a time of another price after the attempt
      started): the money is recorded and refunded in full; the booking keeps waiting;
    - booking cancelled meanwhile and never paid (e.g. its payment deadline passed): it stays cancelled;
      the money is recorded and refunded in full on this payment;
    - booking already paid by another attempt: a second settled payment cannot be recorded, so the
      money is noted on the payment and refunded in full (web/payments/refunds.py), and an error is logged.

    At the clinic's desk (``at_desk``) money is not taken for a booking that cannot be confirmed: 409."""
    payment = await PaymentRecord.select(PaymentRecord.booking_id, PaymentRecord.amount, PaymentRecord.payment_provider
                                         ).where((PaymentRecord.clinic_id == clinic_id)
                                                 & (PaymentRecord.payment_id == payment_id)).first()
    history = {"payment_id": str(payment_id), "provider": payment["payment_provider"], "amount": str(payment["amount"])}
    if details.get("transaction_id"):
        history["transaction_id"] = details["transaction_id"]
    async with transaction_as(actor_id, reason="payment_received", metadata=history):
        booking = await engine.booking_now_holding_the_place(payment["booking_id"])
        locked = await sql.fetchrow(q.LOCK_PAYMENT, clinic_id, payment_id)
        if locked["status"] in SETTLED:
            return False
        if booking["status"] == state.PENDING_PAYMENT and locked["amount"] != booking["final_amount"]:
            # The booking was moved to a time of another price after this attempt started: its amount is
            # no longer what is due. The money is recorded and returned in full; the booking keeps waiting
            # for the right amount.
            if at_desk:
                raise Conflict(N_("The price of this booking changed. Reload the page and take the payment again."))
            refund = {"gateway": details, "refund_reason": "amount_no_longer_due", "refund_percentage": 100,
                      "amount_due": str(booking["final_amount"]),
                      "note": "The booking's price changed after this payment started; the money is returned "
                              "in full and the booking still waits for the amount due."}
            await sql.fetchrow(q.REFUND_LATE_PAYMENT, clinic_id, payment_id, _json(refund), method)
            await refunds.request_refund(clinic_id, payment_id, locked["amount"], "amount_no_longer_due", refund)
            log.warning("payment for an amount no longer due refunded", payment_id=str(payment_id),
                        booking_id=str(booking["booking_id"]))
            return True
        if booking["status"] == state.PENDING_PAYMENT:
            await sql.fetchrow(q.COMPLETE_PAYMENT, clinic_id, payment_id, _json({"gateway": details}), method)
            await engine.confirm_paid(booking, payment_id)
            return True
        if at_desk:
            raise Conflict(N_("This booking is %(status)s: do not take the payment.",
                              status=state.status_words(booking["status"])))
        if booking["status"] == state.CANCELLED and booking["payment_id"] is None:
            refund = {"gateway": details, "refund_reason": "paid_after_cancellation",
                      "cancellation_reason": booking["cancellation_reason"], "refund_percentage": 100,
                      "note": "The money arrived after the booking was cancelled; it is returned in full and "
                              "the booking stays cancelled."}
            await sql.fetchrow(q.REFUND_LATE_PAYMENT, clinic_id, payment_id, _json(refund), method)
            await refunds.request_refund(clinic_id, payment_id, locked["amount"], "paid_after_cancellation", refund)
            await engine.record_late_refund(booking, payment_id)
            log.warning("late payment refunded", payment_id=str(payment_id), booking_id=str(booking["booking_id"]))
            return True
        note = {"gateway": details, "unrecorded_settlement": True, "refund_due": str(locked["amount"]),
                "note": f"The gateway took this money but the booking is {booking['status']} and already "
                        f"paid by payment {booking['payment_id']}: it is returned in full."}
        if await sql.fetchrow(q.NOTE_UNRECORDED_SETTLEMENT, clinic_id, payment_id, _json(note), method) is None:
            return False
        # The same path as every refund: sent to the gateway by the job, or listed to pay by hand.
        await refunds.request_refund(clinic_id, payment_id, locked["amount"], "paid_twice", note)
        log.error("payment settled for a booking paid otherwise", payment_id=str(payment_id),
                  booking_id=str(booking["booking_id"]), paid_by=str(booking["payment_id"]))
        return True


# ------------------------------------------------------------------ the clinic's desk


async def mark_paid(actor: CurrentUser, payment_id: UUID) -> dict:
    """A receptionist (or manager) of the booking's clinic took the money at the desk: the same effect as
    a completed notification, attributed to them. 404 for anyone else; 409 for a payment that is not a
    desk payment, or whose booking can no longer be confirmed. Marking it paid twice changes nothing."""
    clinic_id = await locate_payment(payment_id)
    payment = await sql.fetchrow(q.PAYMENT_WITH_BOOKING, clinic_id, payment_id) if clinic_id else None
    if payment is None or not actor.is_staff or not actor.works_at(payment["clinic_id"]):
        raise NotFound(N_("No such payment."))
    if payment["payment_provider"] != providers.CLINIC:
        raise Conflict(N_("Only payments at the clinic's desk are marked paid by hand."))
    if payment["status"] not in SETTLED:
        if payment["status"] != "pending":
            raise Conflict(PAYMENT_IS_SETTLED.get(payment["status"], N_("This payment is no longer pending.")))
        await _complete(clinic_id, payment_id, actor.user_id, {"received_by": str(actor.user_id)}, None,
                        at_desk=True)
    return _public(await sql.fetchrow(q.PAYMENT_WITH_BOOKING, clinic_id, payment_id))


# ------------------------------------------------------------------ reads


def payment_state(booking: dict) -> str:
    """What the page says about paying: paid, at_desk (the owner chose to pay at the clinic), pending (an
    online payment was started), failed (the last attempt failed), due (nothing started yet), expired (the
    time to pay ran out), cancelled, or moved (rescheduled: the new booking carries the payment)."""
    status, attempt = booking["status"], booking["last_payment_status"]
    if status == state.RESCHEDULED:
        return "moved"
    if state.is_paid(booking):
        return "paid"
    if status == state.CANCELLED:
        return "expired" if booking["cancellation_reason"] == "payment_expired" else "cancelled"
    if status != state.PENDING_PAYMENT or attempt is None:
        return "due"
    if attempt in ("failed", "expired"):
        return "failed"
    if attempt == "pending":
        return "at_desk" if booking["last_payment_provider"] == providers.CLINIC else "pending"
    return "due"



async def payment_for_owner(actor: CurrentUser, payment_id: UUID) -> dict:
    """A payment with its booking, clinic and visit time, if ``actor`` owns the booking (404 otherwise)."""
    clinic_id = await locate_payment(payment_id)
    payment = await sql.fetchrow(q.PAYMENT_WITH_BOOKING, clinic_id, payment_id) if clinic_id else None
    if payment is None or actor.role != ROLE_OWNER or payment["user_id"] != actor.user_id:
        raise NotFound(N_("No such payment."))
    return dict(payment)


async def start_desk_payment(actor: CurrentUser, booking_id: UUID) -> dict:
    """Staff of the booking's clinic are about to take the money at the desk: the booking's pending
    ``clinic`` payment (the owner may have chosen "pay at the clinic" already), or a new one for its final
    amount. Then ``mark_paid`` records the money. 404 for anyone but the clinic's staff; 409 when the
    booking does not wait for payment. Asking twice answers the same pending payment."""
    if not actor.is_staff:
        raise NotFound(N_("No such booking."))
    provider = providers.ClinicProvider()
    async with transaction_as(actor.user_id, reason="payment_started"):
        booking = await engine.booking_for_update(booking_id)
        if booking is None or not actor.works_at(booking["clinic_id"]):
            raise NotFound(N_("No such booking."))
        if booking["status"] != state.PENDING_PAYMENT:
            raise Conflict(_why_not_payable(booking))
        clinic_id = booking["clinic_id"]
        pending = await sql.fetchrow(q.PENDING_DESK_PAYMENT, clinic_id, booking_id, provider.name)
        if pending is not None:
            return _public(pending)
        # The desk's own key: one attempt per click, never shared with an owner's keys.
        payment = await sql.fetchrow(
            q.INSERT_PAYMENT, clinic_id, shard_keys.new_id_today(clinic_id), booking_id, booking["created_at"],
            booking["final_amount"], booking["currency"], provider.payment_method, provider.name,
            booking["start_time"], f"desk-{uuid4()}",
        )
    return _public(payment)


async def take_payment_at_desk(actor: CurrentUser, booking_id: UUID) -> dict:
    """The money of ``booking_id`` was taken at the clinic's desk: its ``clinic`` payment (started now when
    there is none) is completed and the booking confirmed, in one transaction, so that a refusal (409: the
    booking no longer waits for payment, or its price changed) leaves no payment started. The same rules
    as ``start_desk_payment`` followed by ``mark_paid``, which the API offers as two steps."""
    async with transaction_as(actor.user_id, reason="payment_received"):
        payment = await start_desk_payment(actor, booking_id)
        return await mark_paid(actor, payment["payment_id"])
