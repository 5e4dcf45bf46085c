"""Failed logins per account and address, the desk's owner look-ups, and one way to compare phone numbers.

- ``login_failures``: the login throttle (web/accounts/login_throttle.py) counts only failures, per
  (account, client address) pair, with the time that pair must wait before its next attempt. A success
  deletes the pair's row, so nobody else's failures ever stand between an owner and their account.
- ``desk_owner_lookups``: every search of an owner at a clinic's desk, and every owner opened there (who,
  at which clinic, when, what was typed, which owners were shown). It is also what lets a receptionist open
  an owner they just found: an owner id is only accepted at the desk when that desk found the owner, or
  when the owner already booked at the clinic.
- ``vetbook_phone_key(phone)``: the digits that identify an Indonesian number however it is written
  (``0811 5555 1234``, ``+62 811-5555-1234`` and ``62811…`` all give ``81155551234``), with an index on
  owners, so the desk matches a whole number exactly instead of a substring of anyone's.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-12-01T00:00:16:000000"
VERSION = "1.38.0"
DESCRIPTION = "login_failures, desk_owner_lookups, vetbook_phone_key()"

SQL = r"""
CREATE FUNCTION vetbook_phone_key(phone text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN regexp_replace(regexp_replace(phone, '\D', '', 'g'), '^0*(62)?0*', '');

CREATE INDEX users_owner_phone_key_idx ON users (vetbook_phone_key(phone))
    WHERE role = 'owner' AND phone IS NOT NULL;

CREATE TABLE login_failures (
    -- The normalised email as typed: unknown emails are counted too, so the answers never tell which exist.
    account VARCHAR(254) NOT NULL,
    client_address VARCHAR(64) NOT NULL,
    failures INTEGER NOT NULL,
    last_failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- No attempt of this pair is looked at before this time.
    blocked_until TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT login_failures_pkey PRIMARY KEY (account, client_address),
    CONSTRAINT login_failures_failures_check CHECK (failures > 0)
);
CREATE INDEX login_failures_last_failed_at_idx ON login_failures (last_failed_at);

CREATE TABLE desk_owner_lookups (
    lookup_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    staff_user_id UUID NOT NULL REFERENCES users (user_id),
    clinic_id UUID NOT NULL REFERENCES clinics (clinic_id),
    -- 'phone' or 'email': a search; 'open': an owner opened by id (``searched`` holds the id).
    kind VARCHAR(10) NOT NULL,
    searched VARCHAR(254) NOT NULL,
    owner_ids UUID[] NOT NULL DEFAULT '{}',
    looked_up_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT desk_owner_lookups_kind_check CHECK (kind IN ('phone', 'email', 'open'))
);
CREATE INDEX desk_owner_lookups_staff_idx ON desk_owner_lookups (staff_user_id, looked_up_at);
CREATE INDEX desk_owner_lookups_clinic_idx ON desk_owner_lookups (clinic_id, looked_up_at);
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
