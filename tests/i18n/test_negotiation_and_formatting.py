"""The rules behind the pages' language and formats, as plain functions: Accept-Language read by its
weights, the order of the choices, safe return paths, and dates and times moved into the clinic's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from web.core import formatting, i18n
from web.core.i18n import negotiate_locale, parse_accept_language
from web.core.messages import N_
from web.core.urls import safe_local_path


@dataclass
class Person:
    locale: str | None


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        ("ja-JP,ja;q=0.9,en;q=0.8", ["ja-JP", "ja", "en"]),
        ("en;q=0.2, id;q=0.9 ,ja", ["ja", "id", "en"]),
        ("fr;q=0, de", ["de"]),  # q=0 means "not this one"
        ("en;q=abc, ja", ["ja"]),  # a malformed weight counts as 0
        ("", []),
        (None, []),
        (" , ;q=1, ", []),
    ],
)
def test_accept_language_ranges_come_in_order_of_preference(header, ranges) -> None:
    assert parse_accept_language(header) == ranges


def test_a_very_long_accept_language_is_read_only_up_to_a_bound() -> None:
    header = ",".join(["xx"] * 5000) + ",ja"
    assert len(parse_accept_language(header)) <= 30
    assert negotiate_locale(header, None, None) == "id"


@pytest.mark.parametrize(
    ("accept_language", "cookie", "user", "expected"),
    [
        ("en", None, None, "en"),
        ("in-ID", None, None, "id"),  # the withdrawn ISO code old Android clients still send
        ("ja_JP", None, None, "ja"),
        ("*", None, None, "id"),
        ("fr", None, None, "id"),
        ("en", "ja", None, "ja"),  # the switcher's cookie beats the browser
        ("en", "xx", None, "en"),  # an unknown cookie value is ignored
        ("en", "ja", Person("id"), "id"),  # the signed-in person's saved choice beats both
        ("en", "ja", Person(None), "ja"),  # nothing saved yet
        ("en", None, Person("zz"), "en"),
    ],
)
def test_the_language_is_the_persons_choice_then_the_cookie_then_the_browser_then_indonesian(
    accept_language, cookie, user, expected
) -> None:
    assert negotiate_locale(accept_language, cookie, user) == expected


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/profile", "/profile"),
        ("/clinics?page=2&q=kucing%20hitam", "/clinics?page=2&q=kucing%20hitam"),
        ("/cari kucing", "/cari%20kucing"),
        ("/日本", "/%E6%97%A5%E6%9C%AC"),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("https://evil.example/", None),
        ("profile", None),
        ("/a\nb", None),
        ("", None),
        (None, None),
    ],
)
def test_only_paths_of_this_site_are_safe_to_return_to(target, safe) -> None:
    assert safe_local_path(target) == safe


LATE_EVENING_UTC = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("locale", "day", "clock", "moment"),
    [
        ("id", "4 Des 2026", "07.30 WITA", "4 Des 2026 07.30 WITA"),
        ("en", "Dec 4, 2026", "7:30\u202fAM WITA", "Dec 4, 2026, 7:30\u202fAM WITA"),  # CLDR: a narrow no-break space
        ("ja", "2026/12/04", "7:30 WITA", "2026/12/04 7:30 WITA"),
    ],
)
def test_times_are_shown_in_the_clinics_zone_the_locales_way(locale, day, clock, moment) -> None:
    # 23:30 UTC is already the next morning in Makassar (UTC+8).
    assert formatting.format_day(LATE_EVENING_UTC, locale, zone="Asia/Makassar") == day
    assert formatting.format_clock(LATE_EVENING_UTC, locale, zone="Asia/Makassar") == clock
    assert formatting.format_moment(LATE_EVENING_UTC, locale, zone="Asia/Makassar") == moment


def test_dates_and_times_without_a_zone_are_shown_as_they_are() -> None:
    assert formatting.format_day(date(2020, 3, 3), "id") == "3 Mar 2020"
    assert formatting.format_clock(time(9, 5), "id") == "09.05"
    assert formatting.format_day(None, "ja") == formatting.format_moment(None, "ja") == ""
    # A naive datetime is taken as UTC, as the database's timestamptz values are read.
    assert formatting.format_clock(datetime(2026, 1, 1, 2, 0), "en", zone="Asia/Jayapura") == "11:00\u202fAM WIT"


@pytest.mark.parametrize(
    ("locale", "rupiah", "minutes"),
    [("id", "Rp150.000", "30 mnt"), ("en", "IDR150,000", "30 min"), ("ja", "IDR150,000", "30 分")],
)
def test_money_and_durations_per_locale(locale, rupiah, minutes) -> None:
    assert formatting.money(Decimal("150000.00"), "IDR", locale=locale) == rupiah
    assert formatting.minutes(30, locale) == minutes


def test_an_engine_refusal_reads_whole_in_each_language_with_the_status_inside_translated_too() -> None:
    from web.booking.state import IllegalTransition

    refusal = IllegalTransition("no_show", "cancelled").detail
    assert refusal == "A booking that is a no-show cannot be cancelled."
    for locale in ("id", "ja"):
        translated = i18n.translate(refusal, locale)
        # Neither the sentence nor the status inside it is left in English.
        assert "cannot" not in translated and "no-show" not in translated, (locale, translated)
        assert i18n.translate(N_("a no-show"), locale) in translated, (locale, translated)
