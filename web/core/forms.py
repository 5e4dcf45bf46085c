"""Reading values of HTML forms and query strings, which arrive as text (or not at all).

Each returns None for a value that is missing or is not of the kind asked for; the caller decides which
message that deserves (pages say it next to the field, in the reader's language).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from uuid import UUID

_MAX_INT4 = 2**31 - 1


def uuid_or_none(value: object) -> UUID | None:
    """The value as a UUID; None when it is empty or not a UUID."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    try:
        return UUID(text)
    except ValueError:
        return None


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Days outside this range are typing mistakes (and would overflow date arithmetic near year 1 or 9999).
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def day_or_none(value: object) -> date | None:
    """A day written YYYY-MM-DD (what an HTML date field sends), from 2000 to 2100; None otherwise."""
    text = "" if value is None else str(value).strip()
    if not _ISO_DAY.match(text):
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if EARLIEST_DAY <= day <= LATEST_DAY else None


def version_or_none(value: object) -> int | None:
    """A row version from a hidden field: a positive integer that fits the column; else None."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= _MAX_INT4 else None


def finite_decimal_or_none(value: object) -> Decimal | None:
    """A number (as text or a number) as a finite Decimal; None for anything else, including the
    not-a-numbers and infinities that Decimal accepts ('NaN', 'sNaN', 'Infinity')."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


# Whole rupiah, with or without thousands separators as people type them: 150000, 150.000, 150,000.
PRICE_PATTERN = re.compile(r"^(\d+|\d{1,3}([.,]\d{3})+)$")


def parse_price(text: str | None) -> Decimal | None:
    """'' → None; '150000' / '150.000' / '150,000' → Decimal; anything else → ValueError."""
    cleaned = (text or "").strip().replace(" ", "")
    if not cleaned:
        return None
    if not PRICE_PATTERN.match(cleaned):
        raise ValueError(cleaned)
    return Decimal(cleaned.replace(".", "").replace(",", ""))
