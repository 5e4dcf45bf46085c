"""Extensions, helper functions and the reference tables the design's ``*_id`` columns point at.

The design leaves these out; a standalone booking service needs them: clinics (with their IANA time zone),
services, staff, users (owners, receptionists, managers) and pets.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-11-26T00:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "extensions, helper functions, clinics, services, staff, users, pets"

SQL = r"""
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- pg_stat_statements needs a superuser and shared_preload_libraries; a managed server given through
-- DATABASE_URL may offer neither, and the app must still migrate there (the health page says so).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_stat_statements is not available: %', SQLERRM;
END
$$;

-- A time zone name of the zone database (IANA names such as Asia/Jakarta), spelled exactly. Not
-- "AT TIME ZONE accepts it": that also takes POSIX specifications ('UTC+7' and '+07' mean UTC-7 there)
-- and any letter case, which Python's zoneinfo refuses. Immutable enough for a CHECK: the zone
-- database only grows.
CREATE FUNCTION vetbook_is_time_zone(zone text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = zone);
END
$$;

-- The design's update_timestamp(), attached to every table that has updated_at (the design attached it
-- to bookings only).
CREATE FUNCTION update_timestamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END
$$;

CREATE TABLE clinics (
    clinic_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(120) NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    phone VARCHAR(30),
    timezone VARCHAR(64) NOT NULL DEFAULT 'Asia/Jakarta',
    -- No hold closer than this to a slot's start.
    min_booking_notice_minutes INTEGER NOT NULL DEFAULT 60,
    -- A cancellation later than this before the start gets no refund.
    refund_deadline_hours INTEGER NOT NULL DEFAULT 24,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT clinics_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT clinics_timezone_valid CHECK (vetbook_is_time_zone(timezone)),
    CONSTRAINT clinics_min_booking_notice_check CHECK (min_booking_notice_minutes >= 0),
    CONSTRAINT clinics_refund_deadline_check CHECK (refund_deadline_hours >= 0)
);
CREATE UNIQUE INDEX clinics_name_key ON clinics (lower(name));

CREATE TABLE services (
    service_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    clinic_id UUID NOT NULL REFERENCES clinics (clinic_id) ON DELETE RESTRICT,
    name VARCHAR(120) NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    duration_minutes INTEGER NOT NULL,
    price DECIMAL(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT 'IDR',
    is_active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT services_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT services_duration_check CHECK (duration_minutes BETWEEN 5 AND 720),
    CONSTRAINT services_price_check CHECK (price >= 0),
    CONSTRAINT services_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    -- Target of composite foreign keys: a slot's service belongs to the slot's clinic.
    CONSTRAINT services_service_clinic_key UNIQUE (service_id, clinic_id)
);
CREATE UNIQUE INDEX services_clinic_name_key ON services (clinic_id, lower(name));

CREATE TABLE staff (
    staff_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    clinic_id UUID NOT NULL REFERENCES clinics (clinic_id) ON DELETE RESTRICT,
    name VARCHAR(120) NOT NULL,
    role VARCHAR(30) NOT NULL DEFAULT 'veterinarian',
    is_active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT staff_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT staff_role_check CHECK (role IN ('veterinarian', 'nurse', 'groomer', 'assistant')),
    -- Target of composite foreign keys: a slot's staff member works at the slot's clinic.
    CONSTRAINT staff_staff_clinic_key UNIQUE (staff_id, clinic_id)
);
CREATE INDEX staff_clinic_id_idx ON staff (clinic_id);

CREATE TABLE users (
    user_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email VARCHAR(254) NOT NULL,
    name VARCHAR(120) NOT NULL,
    phone VARCHAR(30),
    role VARCHAR(20) NOT NULL DEFAULT 'owner',
    -- The clinic a receptionist works at, or the one a manager manages (NULL: a manager of all clinics).
    clinic_id UUID REFERENCES clinics (clinic_id) ON DELETE RESTRICT,
    password_hash TEXT NOT NULL,
    locale VARCHAR(10),
    is_active BOOLEAN NOT NULL DEFAULT true,
    last_login_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_email_check CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    CONSTRAINT users_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT users_role_check CHECK (role IN ('owner', 'receptionist', 'manager')),
    -- Written so that it never fails for an unknown role: users_role_check names that mistake.
    CONSTRAINT users_clinic_matches_role CHECK (
        (role <> 'owner' OR clinic_id IS NULL) AND (role <> 'receptionist' OR clinic_id IS NOT NULL)
    )
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_phone_idx ON users (phone) WHERE phone IS NOT NULL;
CREATE INDEX users_clinic_id_idx ON users (clinic_id) WHERE clinic_id IS NOT NULL;

CREATE TABLE pets (
    pet_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id UUID NOT NULL REFERENCES users (user_id) ON DELETE RESTRICT,
    name VARCHAR(80) NOT NULL,
    species VARCHAR(20) NOT NULL,
    breed VARCHAR(80),
    birth_date DATE,
    notes TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pets_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT pets_species_check CHECK (
        species IN ('dog', 'cat', 'rabbit', 'bird', 'hamster', 'guinea_pig', 'reptile', 'fish', 'other')
    ),
    CONSTRAINT pets_birth_date_check CHECK (birth_date IS NULL OR birth_date >= DATE '1950-01-01'),
    -- Target of composite foreign keys: a reservation's or booking's pet belongs to its user.
    CONSTRAINT pets_pet_owner_key UNIQUE (pet_id, owner_id)
);
CREATE INDEX pets_owner_id_idx ON pets (owner_id);

CREATE TRIGGER clinics_update_timestamp BEFORE UPDATE ON clinics
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER services_update_timestamp BEFORE UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER staff_update_timestamp BEFORE UPDATE ON staff
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER users_update_timestamp BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
CREATE TRIGGER pets_update_timestamp BEFORE UPDATE ON pets
    FOR EACH ROW EXECUTE FUNCTION update_timestamp();
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
