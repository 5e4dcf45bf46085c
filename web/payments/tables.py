"""Piccolo mapping of payment_records (DDL: piccolo_migrations/0002, 0006, 0021: the key is (clinic_id, payment_id))."""

from piccolo.columns import JSONB, UUID, ForeignKey, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

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
