"""What other features record on a payment: money returned, waiting attempts ended, notes.

The payments feature owns ``payment_records``; the booking engine changes them only through these
functions, inside its own transaction (a cancellation and the refund on its payment commit together).
"""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import UUID

from web.core import sql
from web.payments import refunds
from web.payments import statements as q


def _json(value: dict) -> str:
    return json.dumps(value, default=str)


async def record_refund(clinic_id: UUID, payment_id: UUID, amount: Decimal, reason: str, metadata: dict) -> None:
    """Add ``amount`` returned to the owner to the settled payment's refunds ('refunded' once all of it
    came back, else 'partially_refunded'; ``metadata`` says why), and request the refund that sends the money
    back (web/payments/refunds.py), in the caller's transaction."""
    await sql.execute(q.RECORD_REFUND_ON_PAYMENT, clinic_id, payment_id, amount, _json(metadata))
    await refunds.request_refund(clinic_id, payment_id, amount, reason, metadata)


async def end_waiting_payments_of_chain(clinic_id: UUID, booking_id: UUID) -> None:
    """Attempts still waiting for the money of ``booking_id`` or of the bookings it was rescheduled from
    expire: the amount due changed, or the booking is cancelled."""
    await sql.execute(q.EXPIRE_PENDING_PAYMENTS_OF_CHAIN, clinic_id, booking_id)


async def end_waiting_payments(clinic_id: UUID, booking_id: UUID) -> None:
    """Attempts still waiting for the money of ``booking_id`` expire (its payment deadline passed)."""
    await sql.execute(q.EXPIRE_PENDING_PAYMENTS_OF_BOOKING, clinic_id, booking_id)


async def add_note(clinic_id: UUID, payment_id: UUID, note: dict) -> None:
    """Merge ``note`` into the payment's metadata (e.g. which booking a payment was carried to)."""
    await sql.execute(q.ADD_NOTE, clinic_id, payment_id, _json(note))
