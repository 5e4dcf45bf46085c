"""Piccolo mappings of reservations, bookings and booking_history (DDL: piccolo_migrations/0002-0005).

bookings is partitioned by created_at; its real primary key is (clinic_id, booking_id, created_at), and rows
that point at a booking carry all three (``booking_created_at``). Every key starts with the clinic (migration
0021, docs/scaling.md); Piccolo knows only the id column of each, which is unique in practice.
"""

from piccolo.columns import JSONB, UUID, Date, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from web.accounts.tables import Pet, User
from web.booking.codes import new_booking_code
from web.clinics.tables import Clinic, Service, Staff
from web.slots.tables import Slot


class Reservation(Table, tablename="reservations"):
    reservation_id = UUID(primary_key=True)
    clinic_id = ForeignKey(references=Clinic, null=False)
    user_id = ForeignKey(references=User, null=False)
    pet_id = ForeignKey(references=Pet, null=False)
    slot_id = ForeignKey(references=Slot, null=False)
    slot_date = Date()
    service_id = ForeignKey(references=Service, null=False)
    status = Varchar(length=20, default="pending")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    # Unique per clinic (reservations_lock_token_key).
    lock_token = Varchar(length=64)
    # The client's Idempotency-Key (migration 0020), unique per owner and clinic.
    idempotency_key = Varchar(length=64, null=True, default=None)


class Booking(Table, tablename="bookings"):
    booking_id = UUID(primary_key=True)
    reservation_id = ForeignKey(references=Reservation, null=True, default=None)
    user_id = ForeignKey(references=User, null=False)
    pet_id = ForeignKey(references=Pet, null=False)
    clinic_id = ForeignKey(references=Clinic, null=False)
    service_id = ForeignKey(references=Service, null=False)
    slot_id = ForeignKey(references=Slot, null=False)
    slot_date = Date()
    staff_id = ForeignKey(references=Staff, null=True, default=None)
    status = Varchar(length=20, default="pending_payment")
    payment_status = Varchar(length=20, default="pending")
    total_amount = Numeric(digits=(12, 2))
    discount_amount = Numeric(digits=(12, 2))
    final_amount = Numeric(digits=(12, 2))
    refunded_amount = Numeric(digits=(12, 2))
    currency = Varchar(length=3, default="IDR")
    notes = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    cancelled_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    cancellation_reason = Varchar(length=50, null=True, default=None)
    cancellation_notes = Text(null=True, default=None)
    # No ForeignKey column here: payment_records references bookings, and Piccolo cannot order a cycle.
    payment_id = UUID(null=True, default=None)
    qr_code_url = Text(null=True, default=None)
    version = Integer(default=1)
    rescheduled_from_booking_id = UUID(null=True, default=None)
    rescheduled_from_created_at = Timestamptz(null=True, default=None)
    booking_source = Varchar(length=20, default="app")
    payment_due_at = Timestamptz(null=True, default=None)
    # The database fills it (vetbook_new_booking_code(), migration 0012); the same alphabet client-side.
    booking_code = Varchar(length=8, default=new_booking_code)


class BookingHistory(Table, tablename="booking_history"):
    history_id = UUID(primary_key=True)
    clinic_id = ForeignKey(references=Clinic, null=False)
    booking_id = ForeignKey(references=Booking, null=False)
    booking_created_at = Timestamptz()
    previous_status = Varchar(length=20)
    new_status = Varchar(length=20)
    changed_at = Timestamptz(default=TimestamptzNow())
    changed_by = ForeignKey(references=User, null=True, default=None)
    change_reason = Text(null=True, default=None)
    metadata = JSONB(null=True, default=None)
