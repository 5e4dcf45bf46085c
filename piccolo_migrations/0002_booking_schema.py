"""The design's five tables (2.1) with the partitioning of 2.2, its indexes (2.1, 3.1) and constraints (4.1).

Deviations from the design, each explained in docs/schema.md:
- partitioned tables keep primary keys that include the partition key: slots (slot_id, date) and
  bookings (booking_id, created_at); references to them carry that key (slot_date, booking_created_at);
- reservations is created before bookings (the design references it before it exists);
- every ``*_id`` is a real foreign key, composite where it proves that a slot's service and staff belong
  to its clinic and that a booking's pet belongs to its user;
- amounts cannot be NULL or negative (a NULL discount_amount let any final_amount pass the design's CHECK);
- check_payment_status admits the states the design's own flows produce (cancel, reschedule);
- bookings get refunded_amount and rescheduled_from_* so that refunds and reschedules are recorded exactly.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:02:000000"
VERSION = "1.38.0"
DESCRIPTION = "slots, reservations, bookings, payment_records, booking_history (partitioned)"

SQL = r"""
CREATE TABLE slots (
    slot_id UUID NOT NULL DEFAULT gen_random_uuid(),
    clinic_id UUID NOT NULL,
    service_id UUID NOT NULL,
    staff_id UUID,
    -- The clinic-local day of start_time (checked by slots_check_local_day); the partition key.
    date DATE NOT NULL,
    start_time TIMESTAMPTZ NOT NULL,
    end_time TIMESTAMPTZ NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'available',
    capacity INTEGER NOT NULL DEFAULT 1,
    remaining INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by UUID,
    price DECIMAL(12, 2),
    version INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT slots_pkey PRIMARY KEY (slot_id, date),
    CONSTRAINT slots_status_check CHECK (status IN ('available', 'booked', 'unavailable', 'maintenance')),
    CONSTRAINT slots_capacity_check CHECK (capacity > 0),
    CONSTRAINT slots_remaining_check CHECK (remaining >= 0 AND remaining <= capacity),
    CONSTRAINT slots_time_order_check CHECK (start_time < end_time),
    CONSTRAINT slots_price_check CHECK (price IS NULL OR price >= 0),
    CONSTRAINT slots_version_check CHECK (version > 0),
    -- 'booked' means full (3.3.3 sets it when remaining reaches 0); a booked slot with free places
    -- would hide them from the search (3.3.1 looks for 'available').
    CONSTRAINT slots_booked_means_full CHECK (status <> 'booked' OR remaining = 0),
    -- Target of the composite foreign keys from reservations and bookings.
    CONSTRAINT slots_slot_service_key UNIQUE (slot_id, date, service_id),
    -- One slot per clinic, service, staff member and start: makes slot generation idempotent.
    CONSTRAINT slots_unique_start UNIQUE NULLS NOT DISTINCT (clinic_id, service_id, staff_id, start_time, date),
    CONSTRAINT slots_clinic_id_fkey FOREIGN KEY (clinic_id) REFERENCES clinics (clinic_id),
    CONSTRAINT slots_service_in_clinic_fkey FOREIGN KEY (service_id, clinic_id)
        REFERENCES services (service_id, clinic_id),
    CONSTRAINT slots_staff_in_clinic_fkey FOREIGN KEY (staff_id, clinic_id)
        REFERENCES staff (staff_id, clinic_id),
    CONSTRAINT slots_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (user_id) ON DELETE SET NULL
) PARTITION BY RANGE (date);

CREATE INDEX slots_clinic_id_date_idx ON slots (clinic_id, date);
CREATE INDEX slots_service_id_idx ON slots (service_id);
CREATE INDEX slots_staff_id_idx ON slots (staff_id);
CREATE INDEX slots_date_idx ON slots (date);
CREATE INDEX slots_status_idx ON slots (status);
CREATE INDEX slots_composite_search_idx ON slots (clinic_id, date, status);
CREATE INDEX slots_availability_idx ON slots (clinic_id, date, status) WHERE status = 'available';

-- Created before bookings, which references it (the design creates bookings first, which fails).
CREATE TABLE reservations (
    reservation_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL,
    pet_id UUID NOT NULL,
    slot_id UUID NOT NULL,
    slot_date DATE NOT NULL,
    service_id UUID NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    lock_token VARCHAR(64) NOT NULL,
    CONSTRAINT reservations_lock_token_key UNIQUE (lock_token),
    CONSTRAINT reservations_status_check CHECK (status IN ('pending', 'confirmed', 'expired', 'cancelled')),
    CONSTRAINT reservations_expiry_check CHECK (expires_at > created_at),
    CONSTRAINT reservations_lock_token_check CHECK (length(lock_token) >= 32),
    CONSTRAINT reservations_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id),
    CONSTRAINT reservations_pet_of_user_fkey FOREIGN KEY (pet_id, user_id) REFERENCES pets (pet_id, owner_id),
    CONSTRAINT reservations_service_id_fkey FOREIGN KEY (service_id) REFERENCES services (service_id),
    CONSTRAINT reservations_slot_id_fkey FOREIGN KEY (slot_id, slot_date, service_id)
        REFERENCES slots (slot_id, date, service_id) ON DELETE CASCADE
);

CREATE INDEX reservations_user_id_idx ON reservations (user_id);
CREATE INDEX reservations_slot_id_idx ON reservations (slot_id);
CREATE INDEX reservations_status_idx ON reservations (status);
CREATE INDEX reservations_expires_at_idx ON reservations (expires_at);
-- The expiry job's query: pending holds past their expiry.
CREATE INDEX reservations_pending_expiry_idx ON reservations (expires_at) WHERE status = 'pending';

CREATE TABLE bookings (
    booking_id UUID NOT NULL DEFAULT gen_random_uuid(),
    reservation_id UUID,
    user_id UUID NOT NULL,
    pet_id UUID NOT NULL,
    clinic_id UUID NOT NULL,
    service_id UUID NOT NULL,
    slot_id UUID NOT NULL,
    slot_date DATE NOT NULL,
    staff_id UUID,
    status VARCHAR(20) NOT NULL DEFAULT 'pending_payment',
    payment_status VARCHAR(20) NOT NULL DEFAULT 'pending',
    total_amount DECIMAL(12, 2) NOT NULL,
    discount_amount DECIMAL(12, 2) NOT NULL DEFAULT 0,
    final_amount DECIMAL(12, 2) NOT NULL,
    refunded_amount DECIMAL(12, 2) NOT NULL DEFAULT 0,
    currency VARCHAR(3) NOT NULL DEFAULT 'IDR',
    notes TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    cancellation_reason VARCHAR(50),
    cancellation_notes TEXT,
    payment_id UUID,
    qr_code_url TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    rescheduled_from_booking_id UUID,
    rescheduled_from_created_at TIMESTAMPTZ,
    CONSTRAINT bookings_pkey PRIMARY KEY (booking_id, created_at),
    CONSTRAINT bookings_status_check CHECK (
        status IN ('pending_payment', 'confirmed', 'in_progress', 'completed', 'cancelled', 'rescheduled', 'no_show')
    ),
    CONSTRAINT bookings_payment_status_check CHECK (
        payment_status IN ('pending', 'paid', 'refunded', 'partially_refunded', 'failed')
    ),
    CONSTRAINT bookings_final_amount_check CHECK (final_amount = total_amount - discount_amount),
    CONSTRAINT bookings_amounts_check CHECK (
        total_amount >= 0 AND discount_amount >= 0 AND discount_amount <= total_amount
    ),
    CONSTRAINT bookings_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT bookings_version_check CHECK (version > 0),
    -- The design's rule, widened to the states its own flows produce: a cancelled booking that was
    -- paid and refunds nothing (after the refund deadline) stays 'paid'; a rescheduled booking hands its
    -- payment (or its pending payment) to the new booking.
    CONSTRAINT check_payment_status CHECK (
        (status = 'pending_payment' AND payment_status = 'pending')
        OR (status = 'confirmed' AND payment_status = 'paid')
        OR (status = 'cancelled' AND payment_status IN ('refunded', 'partially_refunded', 'failed', 'paid'))
        OR (status = 'rescheduled' AND payment_status IN ('paid', 'pending'))
        OR (status IN ('in_progress', 'completed', 'no_show'))
    ),
    CONSTRAINT bookings_refund_check CHECK (
        refunded_amount >= 0 AND refunded_amount <= final_amount
        AND (payment_status <> 'refunded' OR refunded_amount = final_amount)
        AND (payment_status <> 'partially_refunded' OR (refunded_amount > 0 AND refunded_amount < final_amount))
        AND (payment_status IN ('refunded', 'partially_refunded') OR refunded_amount = 0)
    ),
    CONSTRAINT bookings_cancelled_at_check CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CONSTRAINT bookings_cancellation_reason_check CHECK (status = 'cancelled' OR cancellation_reason IS NULL),
    CONSTRAINT bookings_completed_at_check CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    CONSTRAINT bookings_rescheduled_from_check CHECK (
        (rescheduled_from_booking_id IS NULL) = (rescheduled_from_created_at IS NULL)
    ),
    CONSTRAINT bookings_reservation_id_fkey FOREIGN KEY (reservation_id)
        REFERENCES reservations (reservation_id) ON DELETE SET NULL,
    CONSTRAINT bookings_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (user_id),
    CONSTRAINT bookings_pet_of_user_fkey FOREIGN KEY (pet_id, user_id) REFERENCES pets (pet_id, owner_id),
    CONSTRAINT bookings_clinic_id_fkey FOREIGN KEY (clinic_id) REFERENCES clinics (clinic_id),
    CONSTRAINT bookings_service_in_clinic_fkey FOREIGN KEY (service_id, clinic_id)
        REFERENCES services (service_id, clinic_id),
    CONSTRAINT bookings_staff_in_clinic_fkey FOREIGN KEY (staff_id, clinic_id)
        REFERENCES staff (staff_id, clinic_id),
    -- The design's fk_bookings_slot (4.1), composite because slots is partitioned; it also proves the
    -- booking's service is the slot's service.
    CONSTRAINT fk_bookings_slot FOREIGN KEY (slot_id, slot_date, service_id)
        REFERENCES slots (slot_id, date, service_id),
    CONSTRAINT bookings_rescheduled_from_fkey FOREIGN KEY (rescheduled_from_booking_id, rescheduled_from_created_at)
        REFERENCES bookings (booking_id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX bookings_user_id_idx ON bookings (user_id);
CREATE INDEX bookings_clinic_id_idx ON bookings (clinic_id);
CREATE INDEX bookings_status_idx ON bookings (status);
CREATE INDEX bookings_created_at_idx ON bookings (created_at);
CREATE INDEX bookings_slot_id_idx ON bookings (slot_id);
CREATE INDEX bookings_created_at_range_idx ON bookings USING BRIN (created_at);
CREATE INDEX bookings_clinic_service_idx ON bookings (clinic_id, service_id, created_at);
CREATE INDEX bookings_notes_idx ON bookings USING GIN (to_tsvector('indonesian', notes));
CREATE INDEX bookings_reservation_id_idx ON bookings (reservation_id) WHERE reservation_id IS NOT NULL;

CREATE TABLE payment_records (
    payment_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id UUID NOT NULL,
    booking_created_at TIMESTAMPTZ NOT NULL,
    amount DECIMAL(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT 'IDR',
    payment_method VARCHAR(30) NOT NULL,
    payment_provider VARCHAR(30) NOT NULL,
    provider_payment_id VARCHAR(100),
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    payment_url TEXT,
    expiry_time TIMESTAMPTZ,
    paid_at TIMESTAMPTZ,
    refunded_at TIMESTAMPTZ,
    refund_amount DECIMAL(12, 2),
    transaction_fee DECIMAL(10, 2),
    metadata JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    idempotency_key VARCHAR(64),
    CONSTRAINT payment_records_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT payment_records_status_check CHECK (
        status IN ('pending', 'completed', 'failed', 'expired', 'refunded', 'partially_refunded')
    ),
    CONSTRAINT payment_records_amount_check CHECK (amount >= 0),
    CONSTRAINT payment_records_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payment_records_method_not_blank CHECK (btrim(payment_method) <> ''),
    CONSTRAINT payment_records_fee_check CHECK (transaction_fee IS NULL OR transaction_fee >= 0),
    CONSTRAINT payment_records_paid_at_check CHECK (
        status NOT IN ('completed', 'refunded', 'partially_refunded') OR paid_at IS NOT NULL
    ),
    -- A refund is recorded on the payment it returns money from (the design inserted a second,
    -- positive 'payment' row for it, which any sum over payments counts as income).
    CONSTRAINT payment_records_refund_check CHECK (
        (refund_amount IS NULL OR (refund_amount > 0 AND refund_amount <= amount))
        AND ((status IN ('refunded', 'partially_refunded')) = (refund_amount IS NOT NULL))
        AND ((refund_amount IS NULL) = (refunded_at IS NULL))
        AND (status <> 'refunded' OR refund_amount = amount)
        AND (status <> 'partially_refunded' OR refund_amount < amount)
    ),
    -- Money and audit trail outlive nothing they describe: bookings are cancelled, never deleted.
    CONSTRAINT payment_records_booking_id_fkey FOREIGN KEY (booking_id, booking_created_at)
        REFERENCES bookings (booking_id, created_at) ON DELETE RESTRICT
);

CREATE INDEX payment_records_booking_id_idx ON payment_records (booking_id);
CREATE INDEX payment_records_status_idx ON payment_records (status);
CREATE INDEX payment_records_provider_payment_id_idx ON payment_records (provider_payment_id);
-- A gateway's id names one payment of that gateway: replayed notifications find the same row.
CREATE UNIQUE INDEX payment_records_provider_payment_key
    ON payment_records (payment_provider, provider_payment_id) WHERE provider_payment_id IS NOT NULL;
-- Never take money twice for one booking: at most one settled payment each.
CREATE UNIQUE INDEX payment_records_one_settled_per_booking
    ON payment_records (booking_id) WHERE status IN ('completed', 'refunded', 'partially_refunded');
-- The unpaid-expiry job's query.
CREATE INDEX payment_records_pending_expiry_idx ON payment_records (expiry_time) WHERE status = 'pending';

-- The booking's current settled payment (the design's payment_id, now a real reference).
ALTER TABLE bookings ADD CONSTRAINT bookings_payment_id_fkey
    FOREIGN KEY (payment_id) REFERENCES payment_records (payment_id) ON DELETE SET NULL;

CREATE TABLE booking_history (
    history_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id UUID NOT NULL,
    booking_created_at TIMESTAMPTZ NOT NULL,
    previous_status VARCHAR(20) NOT NULL,
    new_status VARCHAR(20) NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by UUID,
    change_reason TEXT,
    metadata JSONB,
    CONSTRAINT booking_history_status_changed CHECK (previous_status <> new_status),
    CONSTRAINT booking_history_booking_id_fkey FOREIGN KEY (booking_id, booking_created_at)
        REFERENCES bookings (booking_id, created_at) ON DELETE RESTRICT,
    CONSTRAINT booking_history_changed_by_fkey FOREIGN KEY (changed_by) REFERENCES users (user_id)
        ON DELETE SET NULL
);

CREATE INDEX booking_history_booking_id_idx ON booking_history (booking_id);
CREATE INDEX booking_history_changed_at_idx ON booking_history (changed_at);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
