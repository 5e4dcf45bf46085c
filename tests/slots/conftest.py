"""Fixtures of the slot-generation tests: the booking engine's own database-per-test fixture (``booking_db``),
so that counts over slots, bookings and holds see nothing but the test's own rows."""

from tests.booking.conftest import booking_db  # noqa: F401  (re-exported fixture)
