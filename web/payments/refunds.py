"""Refunds as a workflow: money to return is a row of its own, sent to the gateway by a job (docs/payments.md).

- A refund is requested in the transaction that decides it (a cancellation, a move to a cheaper time, money
  that arrived for a booking that cannot use it, a booking paid twice): ``request_refund``. Nothing is sent
  there: a gateway call inside a transaction would hold the booking's locks for seconds.
- ``send_due_refunds`` (a job, outside any transaction) takes the due refunds clinic by clinic, moving each
  one's next attempt forward by a lease in a committed statement first, then calls the gateway and applies its
  answer with a guarded UPDATE. Two jobs at once never take the same refund; a crash after sending leaves it due
  again after the lease; every send carries the refund's ``refund_key``, which the gateways (Midtrans'
  refund_key, Xendit's Idempotency-key) use to make a resend the same refund.
- Methods the gateway cannot refund, refunds past the method's window, and the gateway's refusals become
  ``manual``; refunds that found no answer after ``MAX_ATTEMPTS`` become ``failed``. Both are listed for the
  clinic's staff (``refunds_to_pay_by_hand``); ``mark_paid_by_hand`` closes one, recording who did it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
import structlog

from web.accounts.auth import CurrentUser
from web.core import metrics, shard_keys, sql
from web.core.errors import Conflict, InvalidInput, NotFound
from web.core.messages import N_
from web.payments import providers
from web.payments import refund_statements as q
from web.payments.providers import RefundAnswer, RefundRequest, RefundResult

log = structlog.get_logger(__name__)

REQUESTED, SENT, SUCCEEDED, FAILED, MANUAL = "requested", "sent", "succeeded", "failed", "manual"
# The states a person must act on.
TO_PAY_BY_HAND = (MANUAL, FAILED)

# A send takes at most the gateway timeout (15 s by default); a refund taken by a job is not due again before
# this, so that a slow answer is never overtaken by a second send.
LEASE_SECONDS = 300
# After a send without a usable answer: 1, 2, 4, … minutes, at most 6 hours; after the last, 'failed'.
FIRST_BACKOFF_SECONDS = 60
MAX_BACKOFF_SECONDS = 6 * 3600
MAX_ATTEMPTS = 10
# A refund the gateway accepted without a final word is asked again (a resend with its key) after this.
ASK_AGAIN_SECONDS = 600


def _json(value: dict) -> str:
    return json.dumps(value, default=str)


def _now() -> datetime:
    return datetime.now(UTC)


def refund_key_for(refund_id: UUID) -> str:
    """The refund's idempotency key at the gateway: made from its id, so it never changes between attempts."""
    return f"vetbook-refund-{refund_id}"


def provider_of(name: str) -> providers.PaymentProvider | None:
    """The provider that took a payment, enabled or not (a refund of a gateway switched off since must still be
    paid back, by hand); None for a name the app does not know."""
    provider_class = providers.provider_class(name)
    return provider_class() if provider_class is not None else None


async def request_refund(clinic_id: UUID, payment_id: UUID, amount: Decimal, reason: str,
                         metadata: dict | None = None) -> dict:
    """Record that ``amount`` of the settled payment goes back to its payer, in the caller's transaction (it
    commits with the decision). The refund waits for the job ('requested'), or goes straight to the list of
    refunds to pay by hand ('manual') when its provider cannot return money online (the clinic's desk, or a
    method the gateway cannot refund)."""
    payment = await sql.fetchrow(q.PAYMENT_FOR_REFUND, clinic_id, payment_id)
    if payment is None:
        raise NotFound(N_("No such payment."))
    refund_id = shard_keys.new_id_today(clinic_id)
    provider = provider_of(payment["payment_provider"])
    blocker = (provider.refund_blocker(payment["payment_method"], payment["paid_at"], _now()) if provider
               else N_("This payment was not made through an online gateway: pay the refund back by hand."))
    row = await sql.fetchrow(
        q.INSERT_REFUND, clinic_id, refund_id, payment_id, payment["booking_id"], amount, payment["currency"],
        reason, payment["payment_provider"], refund_key_for(refund_id), MANUAL if blocker else REQUESTED,
        blocker, _json(metadata or {}),
    )
    metrics.REFUND_REQUESTS.labels(payment["payment_provider"], MANUAL if blocker else REQUESTED).inc()
    return dict(row)


# ------------------------------------------------------------------ the job


@dataclass(frozen=True)
class SendSummary:
    """What one run of the job did, by the state each refund it took ended in."""

    taken: int = 0
    succeeded: int = 0
    sent: int = 0
    manual: int = 0
    retry: int = 0
    failed: int = 0


def backoff_seconds(attempts: int) -> int:
    """The wait before the next send after ``attempts`` sends without a usable answer."""
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(0, attempts - 1))


async def send_due_refunds() -> SendSummary:
    """Send every refund that is due, clinic by clinic, and apply each gateway's answer. Runs outside any
    transaction (each statement commits on its own), so no lock is held while a gateway answers."""
    counts = {"taken": 0, SUCCEEDED: 0, SENT: 0, MANUAL: 0, "retry": 0, FAILED: 0}
    for clinic in await sql.fetch(q.CLINICS_WITH_DUE_REFUNDS):
        for refund in await sql.fetch(q.CLAIM_DUE_REFUNDS, clinic["clinic_id"], LEASE_SECONDS):
            counts["taken"] += 1
            outcome = await _send(refund)
            counts[outcome] += 1
    return SendSummary(counts["taken"], counts[SUCCEEDED], counts[SENT], counts[MANUAL], counts["retry"],
                       counts[FAILED])


async def _send(refund: asyncpg.Record) -> str:
    """One send of a taken refund and its answer applied; returns the state it ended in ('retry' when it
    stays due later)."""
    provider = provider_of(refund["provider"])
    if provider is None or refund["provider"] not in providers.enabled_providers():
        answer = RefundAnswer(RefundResult.MANUAL, message=N_(
            "This payment's gateway is no longer configured here: pay the refund back by hand."))
    elif refund["state"] == REQUESTED and (blocker := provider.refund_blocker(
            refund["payment_method"], refund["paid_at"], _now())):
        answer = RefundAnswer(RefundResult.MANUAL, message=blocker)
    else:
        answer = await provider.refund(RefundRequest(
            refund_id=refund["refund_id"], payment_id=refund["payment_id"],
            provider_payment_id=refund["provider_payment_id"], payment_method=refund["payment_method"],
            paid_at=refund["paid_at"], amount=refund["amount"], currency=refund["currency"],
            refund_key=refund["refund_key"], reason=refund["reason"],
        ))
    return await apply_answer(refund["clinic_id"], refund["refund_id"], answer, attempts=refund["attempts"])


async def apply_answer(clinic_id: UUID, refund_id: UUID, answer: RefundAnswer, attempts: int | None = None) -> str:
    """Apply a gateway's answer about a refund (the job's send, or a gateway's notification about it) with a
    guarded UPDATE: a refund already closed does not change. Returns the state it is in now ('retry' when it
    stays due for another send)."""
    if answer.result is RefundResult.SUCCEEDED:
        row = await sql.fetchrow(q.REFUND_SUCCEEDED, clinic_id, refund_id, answer.gateway_refund_id)
    elif answer.result is RefundResult.SENT:
        row = await sql.fetchrow(q.REFUND_SENT, clinic_id, refund_id, answer.gateway_refund_id, ASK_AGAIN_SECONDS)
    elif answer.result is RefundResult.MANUAL:
        row = await sql.fetchrow(q.REFUND_MANUAL, clinic_id, refund_id, answer.message or N_(
            "The gateway refused this refund: pay it back by hand."))
    else:
        tries = attempts if attempts is not None else MAX_ATTEMPTS
        give_up = tries >= MAX_ATTEMPTS
        row = await sql.fetchrow(q.REFUND_RETRY, clinic_id, refund_id, (answer.message or "no answer")[:500],
                                 backoff_seconds(tries), give_up)
        if row is not None and not give_up:
            log.warning("refund not answered, retried later", refund_id=str(refund_id), attempts=tries,
                        error=answer.message)
            metrics.REFUND_OUTCOMES.labels(row["provider"], "retry").inc()
            return "retry"
    if row is None:
        current = await sql.fetchrow(q.REFUND_BY_ID, clinic_id, refund_id)
        return current["state"] if current is not None else FAILED
    metrics.REFUND_OUTCOMES.labels(row["provider"], row["state"]).inc()
    if row["state"] in TO_PAY_BY_HAND:
        log.warning("refund to pay by hand", refund_id=str(refund_id), state=row["state"],
                    reason=row["manual_reason"])
    return row["state"]


async def apply_gateway_refund(clinic_id: UUID, refund_key: str, answer: RefundAnswer) -> dict:
    """A gateway's notification about one of our refunds (named by its refund_key), applied like the job's own
    answer; replays change nothing. 404 when the clinic has no refund with that key."""
    refund = await sql.fetchrow(q.REFUND_BY_KEY, clinic_id, refund_key)
    if refund is None:
        raise NotFound(N_("No such refund."))
    state = await apply_answer(clinic_id, refund["refund_id"], answer, attempts=refund["attempts"])
    return {"refund_id": refund["refund_id"], "state": state}


# ------------------------------------------------------------------ the clinic's list


async def refunds_to_pay_by_hand(actor: CurrentUser, clinic_id: UUID) -> list[dict]:
    """The clinic's refunds that a person must pay back (the gateway cannot, or found no answer), oldest
    first, with the owner's name and contact details. Staff of the clinic only (404 for anyone else)."""
    if not actor.is_staff or not actor.works_at(clinic_id):
        raise NotFound(N_("No such clinic."))
    return [dict(row) for row in await sql.fetch(q.REFUNDS_TO_PAY_BY_HAND, clinic_id)]


async def mark_paid_by_hand(actor: CurrentUser, refund_id: UUID, note: str | None = None) -> dict:
    """A receptionist or manager of the refund's clinic paid it back by hand: it is closed ('succeeded'),
    recording who and when. Marking it twice by the same person answers the closed refund; 409 when the
    refund is not one to pay by hand; 404 for anyone outside the clinic."""
    clinic_id = await shard_keys.clinic_of(refund_id)
    refund = await sql.fetchrow(q.REFUND_BY_ID, clinic_id, refund_id) if clinic_id else None
    if refund is None or not actor.is_staff or not actor.works_at(refund["clinic_id"]):
        raise NotFound(N_("No such refund."))
    if refund["state"] == SUCCEEDED and refund["paid_by_hand_by"] == actor.user_id:
        return dict(refund)
    if note is not None and len(note) > 500:
        raise InvalidInput({"note": N_("Use at most 500 characters.")})
    row = await sql.fetchrow(q.REFUND_PAID_BY_HAND, clinic_id, refund_id, actor.user_id,
                             _json({"paid_by_hand_note": note} if note else {}))
    if row is None:
        raise Conflict(REFUND_IS_NOT_BY_HAND.get(refund["state"], N_("This refund is not one to pay by hand.")))
    metrics.REFUND_OUTCOMES.labels(row["provider"], "paid_by_hand").inc()
    return dict(row)


REFUND_IS_NOT_BY_HAND = {
    REQUESTED: N_("This refund is still being sent to the gateway."),
    SENT: N_("The gateway is returning this money already."),
    SUCCEEDED: N_("This refund was paid already."),
}


async def refunds_of_bookings(clinic_id: UUID, booking_ids: list[UUID]) -> list[dict]:
    """The refunds of payments started for these bookings of one clinic (a booking and those it was
    rescheduled from), oldest first: the owner's booking page shows what became of each."""
    if not booking_ids:
        return []
    return [dict(row) for row in await sql.fetch(q.REFUNDS_OF_BOOKINGS, clinic_id, booking_ids)]
