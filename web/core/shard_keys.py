"""Ids that name their clinic: the server finds a slot's, hold's, booking's or payment's clinic (the shard key
on Citus) and its partition day from the id alone, without a search across shards (docs/scaling.md).

An id made here (or by the database's ``vetbook_new_id``, migration 0021) is a UUID of version 8 (RFC 9562's
custom layout):

    bytes 0-5   the clinic id's first 48 bits (unique among clinics: clinics_id_prefix_key)
    byte 6      version 8 in the high nibble; the day's bits 17-14 in the low nibble
    byte 7      the day's bits 13-6
    byte 8      the variant (0b10) in the two high bits; the day's bits 5-0
    bytes 9-15  56 random bits

"The day" counts days since 2000-01-01: a slot's date (its partition key), a booking's UTC creation day
(bookings are partitioned by creation time), the creation day for the rest. Ids of the old form (version 4,
rows made before migration 0021) name nothing; the features find those by a search by id, as before.

The clinic behind a prefix comes from a small in-process directory of clinics, which looks a prefix it has
not seen up once (by an index on the clinics' prefixes).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

EPOCH = date(2000, 1, 1)
_DAY_BITS = 18


def new_id(clinic_id: UUID, day: date) -> UUID:
    """A new id for a row of ``clinic_id`` whose partition day (or creation day) is ``day``."""
    days = (day - EPOCH).days
    if not 0 <= days < 1 << _DAY_BITS:
        raise ValueError(f"{day} is outside the days an id can carry")
    middle = bytes((0x80 | ((days >> 14) & 0x0F), (days >> 6) & 0xFF, 0x80 | (days & 0x3F)))
    return UUID(bytes=clinic_id.bytes[:6] + middle + secrets.token_bytes(7))


def new_id_today(clinic_id: UUID) -> UUID:
    """A new id carrying today's UTC day (holds, bookings, payments, history: their creation day)."""
    return new_id(clinic_id, datetime.now(UTC).date())


def is_routed(any_id: UUID) -> bool:
    """Whether the id names its clinic (version 8), as every id made since migration 0021 does."""
    return any_id.bytes[6] >> 4 == 8


def day_of(any_id: UUID) -> date | None:
    """The day an id carries, or None for an id of the old form."""
    if not is_routed(any_id):
        return None
    raw = any_id.bytes
    days = ((raw[6] & 0x0F) << 14) | (raw[7] << 6) | (raw[8] & 0x3F)
    return EPOCH + timedelta(days=days)


@dataclass(frozen=True)
class CreatedWithin:
    """The bounds of a booking's ``created_at`` as far as its id tells (for partition pruning): its UTC day
    with a day either side (the app makes the id, the database the time), or exactly, for an old id found by
    a search."""

    earliest: datetime
    latest: datetime

    @classmethod
    def around(cls, day: date) -> CreatedWithin:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return cls(start - timedelta(days=1), start + timedelta(days=2) - timedelta(microseconds=1))

    @classmethod
    def exactly(cls, created_at: datetime) -> CreatedWithin:
        return cls(created_at, created_at)


class ClinicDirectory:
    """Prefix → clinic id, learnt on first use: a prefix not seen yet is looked up by the unique index on
    clinics' prefixes (clinics is a reference table: on Citus every node has it, and the coordinator answers
    from its own copy). Clinics are few and never change id, so nothing is ever evicted."""

    def __init__(self) -> None:
        self._by_prefix: dict[bytes, UUID] = {}

    def remember(self, clinic_id: UUID) -> None:
        self._by_prefix[clinic_id.bytes[:6]] = clinic_id

    async def clinic_of(self, any_id: UUID) -> UUID | None:
        """The clinic a version-8 id names, or None (an old id, or a prefix no clinic has)."""
        if not is_routed(any_id):
            return None
        prefix = any_id.bytes[:6]
        found = self._by_prefix.get(prefix)
        if found is None:
            from web.core import sql

            found = await sql.fetchval(_CLINIC_BY_PREFIX, prefix)
            if found is not None:
                self._by_prefix[prefix] = found
        return found


# The index clinics_id_prefix_key (migration 0021) answers it.
_CLINIC_BY_PREFIX = "SELECT clinic_id FROM clinics WHERE vetbook_id_prefix(clinic_id) = $1"


directory = ClinicDirectory()


async def clinic_of(any_id: UUID) -> UUID | None:
    """The clinic ``any_id`` names (None for an id of the old form or an unknown prefix)."""
    return await directory.clinic_of(any_id)
