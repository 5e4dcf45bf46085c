"""Short booking codes for check-in at the desk, and NOTIFY on commit when a clinic's day changes.

The design's bookings have only a UUID (and an unused ``qr_code_url``); a receptionist cannot read a UUID
out loud, and a USB scanner reading the QR should type something short. Live pages (owners' slot lists,
the desk's day view) refetch when ``vetbook_live`` says their clinic and day changed: pg_notify inside
the changing transaction is delivered only if it commits, and identical payloads in one transaction are
sent once, so generating a month of slots raises one notification per clinic day.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:12:000000"
VERSION = "1.38.0"
DESCRIPTION = "bookings.booking_code; vetbook_live notifications from slots and bookings"

SQL = r"""
-- 8 characters from 32 that cannot be mistaken for one another when read aloud or typed (no 0/O, 1/I).
-- 32^8 ~ 1.1e12 codes, and the desk looks a code up within its own clinic: a clash is unlikely and the
-- desk lists every match when it happens.
CREATE FUNCTION vetbook_new_booking_code() RETURNS VARCHAR(8) LANGUAGE sql VOLATILE AS $$
    SELECT string_agg(substr('23456789ABCDEFGHJKLMNPQRSTUVWXYZ', 1 + floor(random() * 32)::int, 1), '')
    FROM generate_series(1, 8)
$$;

ALTER TABLE bookings ADD COLUMN booking_code VARCHAR(8) NOT NULL DEFAULT vetbook_new_booking_code();
ALTER TABLE bookings ADD CONSTRAINT bookings_booking_code_check CHECK (booking_code ~ '^[2-9A-HJ-NP-Z]{8}$');
-- Not unique: a unique index on a partitioned table must contain the partition key (created_at), which
-- would not make codes unique. This index serves the desk's lookup.
CREATE INDEX bookings_clinic_code_idx ON bookings (clinic_id, booking_code);

-- Two functions, because a trigger on a partitioned table fires with the partition's TG_TABLE_NAME and
-- PL/pgSQL cannot name a column the row type lacks. The second pg_notify repeats the first when the day
-- did not change: pg_notify sends identical payloads once.
CREATE FUNCTION vetbook_notify_live_slots() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('vetbook_live', json_build_object(
            'topic', 'slots', 'clinic_id', OLD.clinic_id, 'date', OLD.date)::text);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('vetbook_live', json_build_object(
            'topic', 'slots', 'clinic_id', NEW.clinic_id, 'date', NEW.date)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION vetbook_notify_live_bookings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('vetbook_live', json_build_object(
            'topic', 'bookings', 'clinic_id', OLD.clinic_id, 'date', OLD.slot_date)::text);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('vetbook_live', json_build_object(
            'topic', 'bookings', 'clinic_id', NEW.clinic_id, 'date', NEW.slot_date)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER slots_notify_live AFTER INSERT OR UPDATE OR DELETE ON slots
    FOR EACH ROW EXECUTE FUNCTION vetbook_notify_live_slots();
CREATE TRIGGER bookings_notify_live AFTER INSERT OR UPDATE OR DELETE ON bookings
    FOR EACH ROW EXECUTE FUNCTION vetbook_notify_live_bookings();
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
