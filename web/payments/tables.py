"""Piccolo mappings of payment_records (DDL: piccolo_migrations/0002, 0006, 0021: the key is (clinic_id, payment_id))
and refunds (0022: the key is (clinic_id, refund_id))."""

from piccolo.columns import JSONB, UUID, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from web.accounts.tables import User
from web.booking.tables import Booking
from web.clinics.tables import Clinic


class PaymentRecord(Table, tablename="payment_records"):
    payment_id = UUID(primary_key=True)
    clinic_id = ForeignKey(references=Clinic, null=False)
    booking_id = ForeignKey(references=Booking, null=False)
    booking_created_at = Timestamptz()
    amount = Numeric(digits=(12, 2))
    currency = Varchar(length=3, default="IDR")
    payment_method = Varchar(length=30)
    payment_provider = Varchar(length=30)
    provider_payment_id = Varchar(length=100, null=True, default=None)
    status = Varchar(length=20, default="pending")
    payment_url = Text(null=True, default=None)
    expiry_time = Timestamptz(null=True, default=None)
    paid_at = Timestamptz(null=True, default=None)
    refunded_at = Timestamptz(null=True, default=None)
    refund_amount = Numeric(digits=(12, 2), null=True, default=None)
    transaction_fee = Numeric(digits=(10, 2), null=True, default=None)
    metadata = JSONB(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # Unique per clinic (payment_records_idempotency_key_key).
    idempotency_key = Varchar(length=64, null=True, default=None)


class Refund(Table, tablename="refunds"):
    """Money to return on a settled payment, from its request to the gateway's answer (docs/payments.md)."""

    refund_id = UUID(primary_key=True)
    clinic_id = ForeignKey(references=Clinic, null=False)
    payment_id = ForeignKey(references=PaymentRecord, null=False)
    booking_id = UUID()
    amount = Numeric(digits=(12, 2))
    currency = Varchar(length=3, default="IDR")
    reason = Varchar(length=40)
    provider = Varchar(length=30)
    state = Varchar(length=20, default="requested")
    refund_key = Varchar(length=64)
    gateway_refund_id = Varchar(length=100, null=True, default=None)
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    last_error = Text(null=True, default=None)
    manual_reason = Text(null=True, default=None)
    paid_by_hand_by = ForeignKey(references=User, null=True, default=None)
    paid_by_hand_at = Timestamptz(null=True, default=None)
    succeeded_at = Timestamptz(null=True, default=None)
    metadata = JSONB(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
