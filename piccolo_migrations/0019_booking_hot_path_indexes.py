"""Indexes that fit the booking engine's checks, so that their cost stays flat as the tables grow.

- ``bookings_active_pet_visits_idx``: the "this pet already has an overlapping visit" check
  (web/booking/statements.py ``PET_IS_BUSY``) looks a pet's active bookings up by pet and slot date. Without
  it the check scanned every bookings partition (bookings are partitioned by creation time, which the check
  cannot know): 51 ms per hold at a million bookings.
- ``reservations_pending_pet_idx`` and ``reservations_pending_owner_idx``: the same check on live holds, and
  the count of an owner's live holds, read only pending rows.

The overlap check looks only at visits whose slot date lies within two days of the new visit's, which is
what lets these indexes answer it: a slot ends on the clinic-local day it starts (the trigger
``slots_within_one_local_day``), so visits that overlap lie on local days at most two apart whatever the
clinics' time zones.
"""

from piccolo_migrations._raw import raw_sql_migration

ID = "2026-12-02T00:00:19:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes for the pet overlap check and the count of an owner's holds"

SQL = r"""
CREATE INDEX bookings_active_pet_visits_idx ON bookings (pet_id, slot_date)
    WHERE status IN ('confirmed', 'in_progress', 'pending_payment');
CREATE INDEX reservations_pending_pet_idx ON reservations (pet_id, slot_date) WHERE status = 'pending';
CREATE INDEX reservations_pending_owner_idx ON reservations (user_id) WHERE status = 'pending';
"""


async def forwards():
    return raw_sql_migration(ID, DESCRIPTION, SQL)
