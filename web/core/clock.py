"""The time, for rules and pages: now in UTC, and a clinic's today in its own zone.

A clinic's day is its local day (``clinics.timezone``: WIB, WITA or WIT), never the server's: a slot's
``date`` and every "today" a page shows are the clinic's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

# The zone of a page that covers clinics of several zones, or no clinic at all: the capital's (WIB).
PLATFORM_ZONE = "Asia/Jakarta"


def utc_now() -> datetime:
    return datetime.now(UTC)


def clinic_today(zone: str, now: datetime | None = None) -> date:
    """The clinic's local day at ``now`` (default: now)."""
    return (now or utc_now()).astimezone(ZoneInfo(zone)).date()
