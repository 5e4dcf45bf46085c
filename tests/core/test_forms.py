"""The form readers (web/core/forms.py): what text from a form or a query string becomes, and what is None."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import pytest

from web.core.forms import day_or_none, finite_decimal_or_none, parse_price, uuid_or_none, version_or_none


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-01", date(2026, 12, 1)), (" 2027-02-28 ", date(2027, 2, 28)),
    ("2026-13-40", None), ("2026-02-30", None), ("20261201", None), ("2026-W49-2", None), ("0001-01-01", None),
    ("9999-12-31", None), ("", None), (None, None), ("1 Dec 2026", None),
])
def test_a_day_is_yyyy_mm_dd_between_2000_and_2100(text: object, expected: date | None) -> None:
    assert day_or_none(text) == expected


def test_ids_versions_and_numbers() -> None:
    assert uuid_or_none(" 6f1c1d1e-8a53-4c3b-9f0a-1d2e3f4a5b6c ") == UUID("6f1c1d1e-8a53-4c3b-9f0a-1d2e3f4a5b6c")
    assert uuid_or_none("not-a-uuid") is None and uuid_or_none("") is None
    assert version_or_none("3") == 3
    assert [version_or_none(text) for text in ("0", "-1", "x", str(2**31))] == [None] * 4
    assert finite_decimal_or_none("150000.50") == Decimal("150000.50")
    assert [finite_decimal_or_none(text) for text in ("NaN", "sNaN", "Infinity", True, "")] == [None] * 5


@pytest.mark.parametrize(("text", "expected"), [
    ("150000", Decimal(150000)), ("150.000", Decimal(150000)), ("150,000", Decimal(150000)),
    ("1.500.000", Decimal(1500000)), ("", None), ("  ", None),
])
def test_a_price_in_rupiah_is_read_with_its_separators(text: str, expected: Decimal | None) -> None:
    assert parse_price(text) == expected


@pytest.mark.parametrize("text", ["15.00", "1,5", "-5", "abc", "150.00.0"])
def test_a_price_that_is_not_whole_rupiah_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_price(text)
