"""Triggers (4.3), the slot rules a CHECK cannot state, and monthly partitions created ahead (2.2).

pg_partman is not available in the embedded server, so ``vetbook_ensure_partitions()`` does what the
design's ``create_parent(..., 'monthly', 3)`` premake does; the app calls it daily (web/core/maintenance.py).
There is deliberately no DEFAULT partition: a row for a month without a partition is refused with
"no partition of relation ... found for row" instead of being swallowed by a catch-all partition.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:03:000000"
VERSION = "1.38.0"
DESCRIPTION = "updated_at and status-history triggers, slot day rules, monthly partition maintenance"

SQL = r"""
CREATE TRIGGER slots_update_timestamp BEFORE UPDATE ON slots
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER reservations_update_timestamp BEFORE UPDATE ON reservations
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER booking_update_timestamp BEFORE UPDATE ON bookings
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER payment_records_update_timestamp BEFORE UPDATE ON payment_records
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();

-- The design's history trigger, fixed:
-- * the actor comes from the transaction-local setting app.user_id. On a pooled connection that once
--   saw SET LOCAL app.user_id, current_setting(..., true) returns '' (not NULL) afterwards, and the
--   design's ''::uuid cast then fails every later status change: NULLIF guards it;
-- * the reason and metadata come from app.change_reason / app.change_metadata (transaction-local), so the
--   service does not insert a second history row by hand as the design's 4.2 did (two rows per change).
CREATE FUNCTION log_booking_status_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO booking_history (
            booking_id, booking_created_at, previous_status, new_status, changed_by, change_reason, metadata
        ) VALUES (
            NEW.booking_id, NEW.created_at, OLD.status, NEW.status,
            NULLIF(current_setting('app.user_id', true), '')::uuid,
            COALESCE(NULLIF(current_setting('app.change_reason', true), ''), TG_ARGV[0]),
            NULLIF(current_setting('app.change_metadata', true), '')::jsonb
        );
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER booking_status_change
    AFTER UPDATE OF status ON bookings
    FOR EACH ROW EXECUTE FUNCTION log_booking_status_change('system_update');

-- slots.date is the partition key and the day people search by (3.3.1), so it must be the clinic-local
-- day of start_time; and a slot stays within that day, which keeps a staff member's slots that could
-- overlap inside one monthly partition, where the exclusion constraint sees them.
CREATE FUNCTION slots_check_local_day() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    zone text;
BEGIN
    IF NEW.remaining IS NULL THEN
        NEW.remaining := NEW.capacity;
    END IF;
    SELECT timezone INTO zone FROM clinics WHERE clinic_id = NEW.clinic_id;
    IF zone IS NULL THEN
        RETURN NEW;  -- the foreign key refuses the row
    END IF;
    IF NEW.date <> (NEW.start_time AT TIME ZONE zone)::date THEN
        RAISE EXCEPTION 'slot date % is not the clinic-local day of its start time % (%)',
            NEW.date, NEW.start_time AT TIME ZONE zone, zone
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slots_date_is_local_day',
                  TABLE = 'slots';
    END IF;
    IF (NEW.end_time AT TIME ZONE zone) > (NEW.date + 1)::timestamp THEN
        RAISE EXCEPTION 'a slot must end on the day it starts (clinic-local, %)', zone
            USING ERRCODE = 'check_violation', CONSTRAINT = 'slots_within_one_local_day',
                  TABLE = 'slots';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER slots_check_local_day BEFORE INSERT OR UPDATE OF date, start_time, end_time, clinic_id, capacity
    ON slots FOR EACH ROW EXECUTE FUNCTION slots_check_local_day();

-- One month's partitions of slots and bookings, if missing. Each slots partition gets the staff
-- no-overlap rule as an exclusion constraint (4.1's unique index on daterange(timestamptz) cannot be
-- created, and no unique index can express "do not overlap"); PostgreSQL 15 refuses exclusion
-- constraints on a partitioned parent, so they live on each partition.
CREATE FUNCTION vetbook_create_month_partitions(month date) RETURNS integer
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
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I EXCLUDE USING gist '
                       '(staff_id WITH =, tstzrange(start_time, end_time) WITH &&) WHERE (staff_id IS NOT NULL)',
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

-- The premake: partitions from months_back before the current month to months_ahead after it.
-- Idempotent, and serialised by a transaction-level advisory lock so that several app processes can
-- run it at once (session locks are unsafe behind PgBouncer).
CREATE FUNCTION vetbook_ensure_partitions(months_ahead integer DEFAULT 3, months_back integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    current_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('vetbook_ensure_partitions'));
    FOR i IN -months_back .. months_ahead LOOP
        created := created + vetbook_create_month_partitions((current_month + make_interval(months => i))::date);
    END LOOP;
    RETURN created;
END
$$;

SELECT vetbook_ensure_partitions(3, 1);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
