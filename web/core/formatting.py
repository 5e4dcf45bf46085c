"""Formatting of money, dates and time zones for people (Babel)."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

DEFAULT_LOCALE = "id_ID"

# Indonesia's three zones by their everyday names; other zones fall back to the IANA name.
_ZONE_ABBREVIATIONS = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}


def money(amount: Decimal | int | float | None, currency: str = "IDR", locale: str = DEFAULT_LOCALE) -> str:
    """``Rp150.000`` for 150000 IDR in Indonesian; the currency's own minor units elsewhere."""
    if amount is None:
        return ""
    return format_currency(Decimal(amount), currency, locale=locale)


def zone_abbreviation(zone: str) -> str:
    return _ZONE_ABBREVIATIONS.get(zone, zone)
