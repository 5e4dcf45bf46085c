"""Holds take an ``Idempotency-Key``, so that a hold repeated after a lost connection returns the same hold.

A request interrupted by a failover is run again (web/core/failover.py). When the connection was lost while
the hold's COMMIT was under way, nobody knows whether the hold was written; with the client's key the
repeat finds it instead of holding a second place. The key is the owner's: two owners may send the same key.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-12-02T00:00:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "idempotency keys of holds"

SQL = r"""
ALTER TABLE reservations ADD COLUMN idempotency_key varchar(64);
ALTER TABLE reservations ADD CONSTRAINT reservations_idempotency_key_format
    CHECK (idempotency_key ~ '^[A-Za-z0-9._:-]{8,64}$');
CREATE UNIQUE INDEX reservations_owner_idempotency_key_idx ON reservations (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
