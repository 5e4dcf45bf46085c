"""Every table of a booking's life carries its clinic in every key, and every new id names its clinic: the
schema can be distributed by clinic on Citus (design 6.2.2; docs/scaling.md), and stays one schema on plain
PostgreSQL.

- ``clinic_id`` is added to ``reservations``, ``payment_records`` and ``booking_history`` (filled from the
  slot or booking each row belongs to) and leads every primary key, unique constraint and unique index of
  ``slots``, ``reservations``, ``bookings``, ``payment_records``, ``booking_history`` and
  ``desk_owner_lookups``; every foreign key between them includes it; the staff no-overlap exclusion
  constraints compare ``clinic_id WITH =`` (Citus enforces a constraint only within one shard).
- Two foreign keys were ``ON DELETE SET NULL`` (a booking's hold, a booking's payment): with the clinic in
  the key that would null the clinic too, and Citus refuses it. Neither delete happens (bookings, holds and
  payments are never deleted while a booking points at them: the slot a booking uses cannot be deleted), so
  they are plain (NO ACTION) keys.
- Ids that carry their clinic: ``vetbook_new_id(clinic, day)`` makes a UUID (RFC 9562 version 8) whose first
  48 bits are the clinic id's first 48 bits and whose next 18 bits count days since 2000-01-01 (a slot's
  date, a booking's UTC creation day), the other 56 bits random. The app reads the clinic (and the partition
  key) from an id without a search (web/core/shard_keys.py). ``clinics_id_prefix_key`` keeps clinic prefixes
  unique; CHECK constraints refuse an id of this form that names another clinic or day. Ids of the old form
  (version 4, rows made before this migration) stay valid and are found by a search by id.
- The status-history trigger is dropped: on Citus a trigger runs on the worker that holds the row, and
  writing another distributed table from there escapes the coordinator's transaction. The engine writes
  the history row itself, in the same transaction as the change (web/booking/services.py).
- The live-notification triggers (migration 0012) are dropped too: on a worker their pg_notify reaches no
  listener, and it makes a transaction that spans workers fail at its two-phase commit ("cannot PREPARE a
  transaction that has executed LISTEN, UNLISTEN, or NOTIFY"). The app announces what it changed, in the
  same transaction, on the server it talks to (web/core/announcements.py).
- The hold checks' indexes lead with the clinic (the checks are now per clinic); ids of the old form keep an
  index of their own each (they are looked up by id alone).
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-12-06T00:00:21:000000"
VERSION = "1.38.0"
DESCRIPTION = "clinic_id in every key of a booking's tables; ids that name their clinic; history by the engine"

SQL = r"""
-- ---------------------------------------------------------------- ids that name their clinic and day

-- The clinic part of an id: its first 48 bits.
CREATE FUNCTION vetbook_id_prefix(id uuid) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT substring(uuid_send(id) FROM 1 FOR 6)
$$;

-- Version 8 (RFC 9562's custom layout): an id made by vetbook_new_id (or the app's shard_keys.new_id).
CREATE FUNCTION vetbook_id_is_routed(id uuid) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT get_byte(uuid_send(id), 6) >> 4 = 8
$$;

-- The day an id of version 8 carries (NULL for any other id).
CREATE FUNCTION vetbook_id_day(id uuid) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE WHEN get_byte(b, 6) >> 4 = 8
                THEN date '2000-01-01' + (((get_byte(b, 6) & 15) << 14) | (get_byte(b, 7) << 6) | (get_byte(b, 8) & 63))
           END
    FROM (SELECT uuid_send(id) AS b) AS bytes
$$;

-- An id of version 8 must name the row's clinic; ids of the old form carry nothing to check. (Functions
-- called inside these are named with their schema: pg_restore runs constraint checks with an empty
-- search_path.)
CREATE FUNCTION vetbook_id_names_clinic(id uuid, clinic uuid) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NOT public.vetbook_id_is_routed(id) OR public.vetbook_id_prefix(id) = public.vetbook_id_prefix(clinic)
$$;

-- A new id for a row of ``clinic`` on ``day``: the clinic's 48 bits, version 8, the day (18 bits around the
-- variant bits), 56 random bits.
CREATE FUNCTION vetbook_new_id(clinic uuid, day date) RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        public.vetbook_id_prefix(clinic)
        || set_byte(set_byte(set_byte('\x000000'::bytea, 0, 128 | ((d >> 14) & 15)), 1, (d >> 6) & 255), 2, 128 | (d & 63))
        || substring(uuid_send(gen_random_uuid()) FROM 10 FOR 7),
        'hex')::uuid
    FROM (SELECT day - date '2000-01-01' AS d) AS days
$$;

-- Two clinics never share a prefix, so a prefix names one clinic.
CREATE UNIQUE INDEX clinics_id_prefix_key ON clinics (vetbook_id_prefix(clinic_id));

-- ---------------------------------------------------------------- history and notices written by the app

DROP TRIGGER booking_status_change ON bookings;
DROP FUNCTION log_booking_status_change();
DROP TRIGGER slots_notify_live ON slots;
DROP TRIGGER bookings_notify_live ON bookings;
DROP FUNCTION vetbook_notify_live_slots(), vetbook_notify_live_bookings();

-- ---------------------------------------------------------------- clinic_id where it was missing

ALTER TABLE reservations ADD COLUMN clinic_id uuid;
UPDATE reservations r SET clinic_id = s.clinic_id FROM slots s WHERE s.slot_id = r.slot_id AND s.date = r.slot_date;
ALTER TABLE reservations ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE payment_records ADD COLUMN clinic_id uuid;
UPDATE payment_records p SET clinic_id = b.clinic_id
FROM bookings b WHERE b.booking_id = p.booking_id AND b.created_at = p.booking_created_at;
ALTER TABLE payment_records ALTER COLUMN clinic_id SET NOT NULL;

ALTER TABLE booking_history ADD COLUMN clinic_id uuid;
UPDATE booking_history h SET clinic_id = b.clinic_id
FROM bookings b WHERE b.booking_id = h.booking_id AND b.created_at = h.booking_created_at;
ALTER TABLE booking_history ALTER COLUMN clinic_id SET NOT NULL;

-- ---------------------------------------------------------------- keys with the clinic first

-- The foreign keys between these tables hang on the keys that change: dropped here, made again below.
ALTER TABLE reservations DROP CONSTRAINT reservations_slot_id_fkey;
ALTER TABLE bookings DROP CONSTRAINT bookings_reservation_id_fkey, DROP CONSTRAINT fk_bookings_slot,
    DROP CONSTRAINT bookings_rescheduled_from_fkey, DROP CONSTRAINT bookings_payment_id_fkey;
ALTER TABLE payment_records DROP CONSTRAINT payment_records_booking_id_fkey;
ALTER TABLE booking_history DROP CONSTRAINT booking_history_booking_id_fkey;

ALTER TABLE slots DROP CONSTRAINT slots_pkey, DROP CONSTRAINT slots_slot_service_key;
ALTER TABLE slots ADD CONSTRAINT slots_pkey PRIMARY KEY (clinic_id, slot_id, date),
    ADD CONSTRAINT slots_slot_service_key UNIQUE (clinic_id, slot_id, date, service_id);

ALTER TABLE reservations DROP CONSTRAINT reservations_pkey, DROP CONSTRAINT reservations_lock_token_key;
ALTER TABLE reservations ADD CONSTRAINT reservations_pkey PRIMARY KEY (clinic_id, reservation_id),
    ADD CONSTRAINT reservations_lock_token_key UNIQUE (clinic_id, lock_token);
DROP INDEX reservations_owner_idempotency_key_idx;
-- A hold's key is the owner's at one clinic: a repeated hold names the same slot, so the same clinic.
CREATE UNIQUE INDEX reservations_owner_idempotency_key_idx ON reservations (clinic_id, user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE bookings DROP CONSTRAINT bookings_pkey;
ALTER TABLE bookings ADD CONSTRAINT bookings_pkey PRIMARY KEY (clinic_id, booking_id, created_at);

ALTER TABLE payment_records DROP CONSTRAINT payment_records_pkey,
    DROP CONSTRAINT payment_records_idempotency_key_key;
ALTER TABLE payment_records ADD CONSTRAINT payment_records_pkey PRIMARY KEY (clinic_id, payment_id),
    ADD CONSTRAINT payment_records_idempotency_key_key UNIQUE (clinic_id, idempotency_key);
DROP INDEX payment_records_provider_payment_key, payment_records_one_settled_per_booking;
CREATE UNIQUE INDEX payment_records_provider_payment_key
    ON payment_records (clinic_id, payment_provider, provider_payment_id) WHERE provider_payment_id IS NOT NULL;
CREATE UNIQUE INDEX payment_records_one_settled_per_booking
    ON payment_records (clinic_id, booking_id) WHERE status IN ('completed', 'refunded', 'partially_refunded');

ALTER TABLE booking_history DROP CONSTRAINT booking_history_pkey;
ALTER TABLE booking_history ADD CONSTRAINT booking_history_pkey PRIMARY KEY (clinic_id, history_id);

ALTER TABLE desk_owner_lookups DROP CONSTRAINT desk_owner_lookups_pkey;
ALTER TABLE desk_owner_lookups ADD CONSTRAINT desk_owner_lookups_pkey PRIMARY KEY (clinic_id, lookup_id);

-- ---------------------------------------------------------------- foreign keys with the clinic

ALTER TABLE reservations ADD CONSTRAINT reservations_slot_id_fkey
    FOREIGN KEY (clinic_id, slot_id, slot_date, service_id)
    REFERENCES slots (clinic_id, slot_id, date, service_id) ON DELETE CASCADE;
ALTER TABLE bookings ADD CONSTRAINT bookings_reservation_id_fkey
    FOREIGN KEY (clinic_id, reservation_id) REFERENCES reservations (clinic_id, reservation_id);
ALTER TABLE bookings ADD CONSTRAINT fk_bookings_slot
    FOREIGN KEY (clinic_id, slot_id, slot_date, service_id) REFERENCES slots (clinic_id, slot_id, date, service_id);
ALTER TABLE bookings ADD CONSTRAINT bookings_rescheduled_from_fkey
    FOREIGN KEY (clinic_id, rescheduled_from_booking_id, rescheduled_from_created_at)
    REFERENCES bookings (clinic_id, booking_id, created_at);
ALTER TABLE payment_records ADD CONSTRAINT payment_records_booking_id_fkey
    FOREIGN KEY (clinic_id, booking_id, booking_created_at) REFERENCES bookings (clinic_id, booking_id, created_at)
    ON DELETE RESTRICT;
ALTER TABLE bookings ADD CONSTRAINT bookings_payment_id_fkey
    FOREIGN KEY (clinic_id, payment_id) REFERENCES payment_records (clinic_id, payment_id);
ALTER TABLE booking_history ADD CONSTRAINT booking_history_booking_id_fkey
    FOREIGN KEY (clinic_id, booking_id, booking_created_at) REFERENCES bookings (clinic_id, booking_id, created_at)
    ON DELETE RESTRICT;

-- ---------------------------------------------------------------- ids that name the row's clinic and day

ALTER TABLE slots ADD CONSTRAINT slots_id_names_clinic_and_day CHECK (
    vetbook_id_names_clinic(slot_id, clinic_id) AND (NOT vetbook_id_is_routed(slot_id) OR vetbook_id_day(slot_id) = date)
);
-- A booking's id carries its creation day in UTC; the app makes the id, the database the time, so a day
-- either side is allowed (a transaction that began just before midnight).
ALTER TABLE bookings ADD CONSTRAINT bookings_id_names_clinic_and_day CHECK (
    vetbook_id_names_clinic(booking_id, clinic_id)
    AND (NOT vetbook_id_is_routed(booking_id)
         OR abs(vetbook_id_day(booking_id) - (created_at AT TIME ZONE 'UTC')::date) <= 1)
);
-- A hold's id carries its slot's day (so that its confirm knows the day before reading anything).
ALTER TABLE reservations ADD CONSTRAINT reservations_id_names_clinic_and_day CHECK (
    vetbook_id_names_clinic(reservation_id, clinic_id)
    AND (NOT vetbook_id_is_routed(reservation_id) OR vetbook_id_day(reservation_id) = slot_date)
);
ALTER TABLE payment_records ADD CONSTRAINT payment_records_id_names_clinic
    CHECK (vetbook_id_names_clinic(payment_id, clinic_id));
ALTER TABLE booking_history ADD CONSTRAINT booking_history_id_names_clinic
    CHECK (vetbook_id_names_clinic(history_id, clinic_id));
ALTER TABLE desk_owner_lookups ADD CONSTRAINT desk_owner_lookups_id_names_clinic
    CHECK (vetbook_id_names_clinic(lookup_id, clinic_id));

-- ---------------------------------------------------------------- the staff rule within the clinic

DO $$
DECLARE
    partition_name text;
BEGIN
    FOR partition_name IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'slots'::regclass
    LOOP
        EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT IF EXISTS %I', partition_name,
                       partition_name || '_no_staff_overlap');
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I EXCLUDE USING gist '
                       '(clinic_id WITH =, staff_id WITH =, tstzrange(start_time, end_time) WITH &&) '
                       'WHERE (staff_id IS NOT NULL)', partition_name, partition_name || '_no_staff_overlap');
    END LOOP;
END
$$;

-- New months get the same rule.
CREATE OR REPLACE FUNCTION vetbook_create_month_partitions(month date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    next_first_day date := (date_trunc('month', month) + interval '1 month')::date;
    suffix text := to_char(first_day, 'YYYYMM');
    created integer := 0;
BEGIN
    IF to_regclass(format('public.%I', 'slots_' || suffix)) IS NULL THEN
        EXECUTE format('CREATE TABLE public.%I PARTITION OF slots FOR VALUES FROM (%L) TO (%L)',
                       'slots_' || suffix, first_day, next_first_day);
        -- A staff member works at one clinic; with the clinic compared by = the rule holds within a shard.
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I EXCLUDE USING gist '
                       '(clinic_id WITH =, staff_id WITH =, tstzrange(start_time, end_time) WITH &&) '
                       'WHERE (staff_id IS NOT NULL)',
                       'slots_' || suffix, 'slots_' || suffix || '_no_staff_overlap');
        created := created + 1;
    END IF;
    -- bookings are cut at UTC month starts: the design's bare '2025-08-01' bounds on a timestamptz
    -- would depend on the TimeZone of whichever session created the partition.
    IF to_regclass(format('public.%I', 'bookings_' || suffix)) IS NULL THEN
        EXECUTE format('CREATE TABLE public.%I PARTITION OF bookings FOR VALUES FROM (%L) TO (%L)',
                       'bookings_' || suffix,
                       first_day::timestamp AT TIME ZONE 'UTC', next_first_day::timestamp AT TIME ZONE 'UTC');
        created := created + 1;
    END IF;
    RETURN created;
END
$$;

-- ---------------------------------------------------------------- indexes of the per-clinic checks

DROP INDEX bookings_active_pet_visits_idx, reservations_pending_pet_idx, reservations_pending_owner_idx;
CREATE INDEX bookings_active_pet_visits_idx ON bookings (clinic_id, pet_id, slot_date)
    WHERE status IN ('confirmed', 'in_progress', 'pending_payment');
CREATE INDEX reservations_pending_pet_idx ON reservations (clinic_id, pet_id, slot_date) WHERE status = 'pending';
CREATE INDEX reservations_pending_owner_idx ON reservations (user_id, clinic_id) WHERE status = 'pending';

-- An id of the old form names no clinic: it is found by its id alone, which the keys (led by the clinic) cannot
-- serve. These indexes can (on Citus: each shard's own).
CREATE INDEX slots_slot_id_idx ON slots (slot_id);
CREATE INDEX reservations_reservation_id_idx ON reservations (reservation_id);
CREATE INDEX bookings_booking_id_idx ON bookings (booking_id);
CREATE INDEX payment_records_payment_id_idx ON payment_records (payment_id);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
