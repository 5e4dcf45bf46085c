"""A manager reads the analytics, filters by clinic and service, exports the CSV, refreshes the figures and
opens the database health page: in a real Chromium at 1366 x 768 against the live server. Every figure is
checked against SQL over the ``bookings`` table (never the view).

The test makes its own clinic (two services, a month of bookings in every status, and the month before) and its own manager of
every clinic (unique names), so the demo data other tests use is untouched.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg

from tests.analytics.expected import EXPECTED_CSV_ROWS, EXPECTED_TOTALS, expected_csv, expected_kpis
from tests.db.factories import make_booking_at, make_clinic, make_pet, make_service, make_slot, make_user
from tests.e2e.conftest import NewContext, document_scroll_width, save_screenshot
from tests.e2e.pages import AnalyticsPage, DatabaseHealthPage, LoginPage
from web.accounts.passwords import hash_password

DESK_VIEWPORT = {"width": 1366, "height": 768}
PASSWORD = "analytics-e2e-2026"
ZONE = "Asia/Makassar"
# (status, payment status, refunded share) cycled over the month: every kind of booking appears.
PATTERN = (
    ("completed", "paid", 0), ("confirmed", "paid", 0), ("completed", "paid", 0), ("no_show", "paid", 0),
    ("cancelled", "refunded", 1), ("completed", "paid", 0), ("pending_payment", "pending", 0),
    ("cancelled", "partially_refunded", Decimal("0.5")), ("completed", "paid", 0), ("rescheduled", "paid", 0),
)
REFRESH = """
INSERT INTO analytics_refreshes AS r (view_name, refreshed_at) VALUES ('booking_analytics_daily', now())
ON CONFLICT (view_name) DO UPDATE SET refreshed_at = GREATEST(r.refreshed_at, EXCLUDED.refreshed_at)
"""


async def refresh_view(db: asyncpg.Connection) -> None:
    """What the hourly job does (web/analytics/services.refresh_booking_analytics), from the test."""
    async with db.transaction():
        await db.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily")
        await db.execute(REFRESH)


async def settle_places(db: asyncpg.Connection, slots) -> None:
    """Each slot's remaining places = capacity - the bookings that keep a place (bookings written here go
    straight into the table, past the engine)."""
    await db.execute(
        "UPDATE slots s SET remaining = s.capacity - (SELECT count(*) FROM bookings b WHERE b.slot_id = s.slot_id "
        "AND b.slot_date = s.date AND b.status NOT IN ('cancelled', 'rescheduled')) WHERE s.slot_id = ANY($1::uuid[])",
        [slot["slot_id"] for slot in slots])


async def make_clinic_with_a_month_of_bookings(db: asyncpg.Connection) -> dict:
    tag = uuid.uuid4().hex[:6]
    clinic = await make_clinic(db, name=f"Analytics E2E {tag}", timezone=ZONE)
    services = {
        "Vaccination": await make_service(db, clinic, name="Vaccination", price=Decimal("150000")),
        "Grooming": await make_service(db, clinic, name="Grooming", price=Decimal("250000")),
    }
    owner = await make_user(db, name=f"Analytics Owner {tag}")
    pet = await make_pet(db, owner)
    # One slot per service carries the whole history: room for all of it, its places settled afterwards,
    # so the shared server's database keeps `vetbook check` true for the tests that run after this one.
    slots = {name: await make_slot(db, clinic, service, capacity=200, remaining=200)
             for name, service in services.items()}
    zone = ZoneInfo(ZONE)
    today = datetime.now(zone).date()
    # The last 30 days and the 30 before them (the page compares the two), on the days whose monthly
    # partition exists (no DDL here: creating one while the server's jobs touch bookings can deadlock).
    partitions = {row["relname"] for row in await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'bookings'::regclass")}
    number = 0
    for days_ago in range(60):
        day = today - timedelta(days=days_ago)
        if f"bookings_{day:%Y%m}" not in partitions:
            continue
        for index in range(1 + (days_ago * 7) % 4):
            number += 1
            status, payment, refunded_share = PATTERN[number % len(PATTERN)]
            name = "Grooming" if number % 3 == 0 else "Vaccination"
            amount = services[name]["price"]
            created = datetime.combine(day, time(8 + index, 15), tzinfo=zone)
            if created > datetime.now(zone):
                created = datetime.now(zone) - timedelta(minutes=5 + index)
            await make_booking_at(db, slots[name], owner, pet, created, status, payment, amount,
                                  refunded=(amount * refunded_share).quantize(Decimal("1")))
    await settle_places(db, slots.values())
    email = f"analytics-{tag}@example.test"
    await make_user(db, role="manager", email=email, name="Analytics Manager", password_hash=hash_password(PASSWORD))
    await refresh_view(db)
    return {"clinic": clinic, "services": services, "slots": slots, "owner": owner, "pet": pet, "today": today,
            "email": email}


async def expected(db: asyncpg.Connection, world: dict, service_name: str | None = None,
                   previous: bool = False) -> dict[str, str]:
    """The KPIs of the last 30 days (or of the 30 before them) by SQL over bookings."""
    last_day = world["today"] - timedelta(days=30 if previous else 0)
    service_id = world["services"][service_name]["service_id"] if service_name else None
    row = await db.fetchrow(EXPECTED_TOTALS, last_day - timedelta(days=29), last_day, [world["clinic"]["clinic_id"]],
                            service_id)
    return {key.replace("_", "-"): "" if value is None else str(value) for key, value in expected_kpis(row).items()}


def as_decimals(kpis: dict[str, str]) -> dict[str, Decimal | None]:
    return {key: Decimal(value) if value else None for key, value in kpis.items()}


async def test_manager_reads_filters_exports_and_refreshes_analytics(
        new_context: NewContext, live_db: asyncpg.Connection) -> None:
    world = await make_clinic_with_a_month_of_bookings(live_db)
    clinic_id = world["clinic"]["clinic_id"]
    context = await new_context(viewport=DESK_VIEWPORT, locale="en-US", timezone_id=ZONE, accept_downloads=True)
    page = await context.new_page()
    await LoginPage(page).log_in(world["email"], PASSWORD, "/manage/analytics")
    await page.get_by_test_id("nav-analytics").wait_for()

    analytics = AnalyticsPage(page)
    await analytics.open()
    await analytics.how_we_count.wait_for()

    # Filter by the clinic: the KPIs equal SQL over bookings for the last 30 days. The days are the world's,
    # named in the form: the page's own "today" turns at the clinic's midnight, perhaps while this test runs.
    today = world["today"]
    await analytics.filter(clinic=clinic_id, first_day=(today - timedelta(days=29)).isoformat(),
                           last_day=today.isoformat())
    assert as_decimals(await analytics.kpis()) == as_decimals(await expected(live_db, world))
    assert await analytics.kpi_value("bookings") != "0"
    previous = await expected(live_db, world, previous=True)
    assert as_decimals({key: await analytics.kpi_previous(key) for key in previous}) == as_decimals(previous)
    assert len(await analytics.daily_bookings()) == 30
    assert await analytics.service_rows.count() == 2
    await analytics.trend_chart.wait_for()
    await analytics.service_chart.wait_for()
    assert "IDR" in await analytics.kpi_text("revenue")
    assert await document_scroll_width(page) <= DESK_VIEWPORT["width"]
    await save_screenshot(page, "readme-analytics")

    # ... and by one of its services.
    grooming = world["services"]["Grooming"]["service_id"]
    await analytics.filter(service=grooming)
    assert as_decimals(await analytics.kpis()) == as_decimals(await expected(live_db, world, "Grooming"))
    assert list(await analytics.service_revenues()) == [str(grooming)]

    # The CSV of what is shown equals SQL over bookings for the same filters.
    filename, content = await analytics.download_csv()
    assert filename.startswith("vetbook-analytics-") and filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:3] == ["date", "clinic", "service"]
    sql_rows = await live_db.fetch(EXPECTED_CSV_ROWS, today - timedelta(days=29), today, [clinic_id], grooming)
    assert rows[1:] == expected_csv(sql_rows)

    # A booking made now shows up after "Refresh now", and "data as of" moves.
    as_of_before = await analytics.data_as_of()
    bookings_before = int(await analytics.kpi_value("bookings"))
    # Made now, or just before the world's last day ends if the clinic's midnight has passed meanwhile.
    made = min(datetime.now(UTC), datetime.combine(today, time(23, 59), tzinfo=ZoneInfo(ZONE)))
    await make_booking_at(live_db, world["slots"]["Grooming"], world["owner"], world["pet"], made,
                          "confirmed", "paid", "250000")
    await settle_places(live_db, world["slots"].values())
    await analytics.refresh()
    assert await analytics.data_as_of() > as_of_before
    assert int(await analytics.kpi_value("bookings")) == bookings_before + 1
    assert as_decimals(await analytics.kpis()) == as_decimals(await expected(live_db, world, "Grooming"))
    assert str(grooming) in page.url  # back on the same filters

    # Pressed again at once: refused with a message, nothing breaks.
    await analytics.refresh()
    assert "wait a minute" in await analytics.notice.inner_text()

    # The database health page.
    await analytics.database_link.click()
    health = DatabaseHealthPage(page)
    await health.root.wait_for()
    assert await health.slow_statements.count() >= 1
    assert await health.partition_parents() == {"bookings", "slots"}
    assert await health.index_rows.count() >= 1
    assert "%" in await health.cache_database.inner_text()
    assert await document_scroll_width(page) <= DESK_VIEWPORT["width"]
    await save_screenshot(page, "manager-database-health")
