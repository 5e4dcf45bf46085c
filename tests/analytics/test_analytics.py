"""The manager's analytics: KPIs, CSV and charts equal what plain SQL over ``bookings`` gives for the same
filters; clinic scoping; "refresh now" (rate-limited) really refreshes; CSV cells are spreadsheet-safe."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.accounts.helpers import csrf_token, make_person, web_session
from tests.analytics.expected import EXPECTED_CSV_ROWS, EXPECTED_TOTALS, expected_csv, expected_kpis
from tests.db.factories import (
    make_booking_at,
    make_clinic,
    make_payment,
    make_pet,
    make_service,
    make_slot,
    make_user,
)
from web.accounts import services as account_services
from web.analytics import services
from web.core import sql
from web.core.errors import DomainError


async def expected_for(first: date, last: date, clinic_ids: list, service_id=None) -> dict:
    row = await sql.fetchrow(EXPECTED_TOTALS, first, last, clinic_ids, service_id)
    return expected_kpis(row)


def kpi_values(report: services.AnalyticsReport) -> dict:
    return {kpi.key: kpi.current for kpi in report.kpis}


@pytest.fixture
async def world(app) -> dict:
    return await build_world()


# build_world's KPIs over its last 10 days, worked out by hand: 7 bookings (the rescheduled one not counted),
# 2 completed, 2 cancelled, 1 no-show; revenue 250000 + 250000 + 250000 + 50000 kept of the partial refund +
# 99999.50 + 0 of the full refund; 4 × 250000 + 99999.50 + 120000 paid; 200000 + 120000 returned; fees 4000 +
# 5000 + 1500.
WORLD_KPIS_OF_TEN_DAYS = {
    "bookings": 7, "completed": 2, "cancelled": 2, "no_show_rate": Decimal("33.3"),
    "revenue": Decimal("899999.50"), "average_booking_value": Decimal("149999.92"),
    "gross_revenue": Decimal("1219999.50"), "refunds": Decimal("320000.00"), "gateway_fees": Decimal("10500.00"),
    "net_revenue": Decimal("889499.50"),
}


async def build_world() -> dict:
    """Two clinics in other zones than the server's, each with bookings made over the last 20 local days
    in every status, and one manager per clinic. Everything named uniquely; the view is refreshed. (On the
    in-process app's database; tests/citus runs it on a distributed one.)"""
    async with sql.connection() as conn:
        makassar = await make_clinic(conn, name=f"Analytics Bali {uuid.uuid4().hex[:6]}", timezone="Asia/Makassar")
        jayapura = await make_clinic(conn, name=f"Analytics Papua {uuid.uuid4().hex[:6]}", timezone="Asia/Jayapura")
        grooming = await make_service(conn, makassar, name="Grooming")
        # A name a spreadsheet would run as a formula.
        formula = await make_service(conn, makassar, name='=HYPERLINK("http://x.test","click")')
        check_up = await make_service(conn, jayapura, name="Check-up")
        owner = await make_user(conn)
        pet = await make_pet(conn, owner)
        slots = {
            "grooming": await make_slot(conn, makassar, grooming),
            "formula": await make_slot(conn, makassar, formula),
            "check_up": await make_slot(conn, jayapura, check_up),
        }
        zone = ZoneInfo("Asia/Makassar")
        today = datetime.now(zone).date()

        async def book(slot: str, days_ago: int, status: str, payment: str, amount: str, refunded: str = "0",
                       hour: int = 10) -> dict:
            clinic_zone = ZoneInfo(makassar["timezone"] if slot != "check_up" else jayapura["timezone"])
            local_day = datetime.now(clinic_zone).date() - timedelta(days=days_ago)
            created = datetime.combine(local_day, time(hour, 0), tzinfo=clinic_zone)
            return await make_booking_at(conn, slots[slot], owner, pet, created, status, payment, amount, refunded)

        async def paid_with_fee(booking: dict, fee: str, status: str = "completed", refunded: str | None = None,
                                carried: bool = True) -> None:
            """A settled payment of ``booking`` whose gateway charged ``fee``, carried by the booking or not."""
            payment = await make_payment(
                conn, booking, status=status, paid_at=booking["created_at"], transaction_fee=Decimal(fee),
                **({"refund_amount": Decimal(refunded), "refunded_at": booking["created_at"]} if refunded else {}))
            if carried:
                await conn.execute("UPDATE bookings SET payment_id = $3 WHERE clinic_id = $1 AND booking_id = $2",
                                   booking["clinic_id"], booking["booking_id"], payment["payment_id"])

        # The current period (the last 10 days) ...
        await book("grooming", 0, "confirmed", "paid", "250000", hour=0)  # just after local midnight
        await paid_with_fee(await book("grooming", 1, "completed", "paid", "250000"), "4000")
        await book("grooming", 2, "no_show", "paid", "250000")
        await paid_with_fee(await book("grooming", 2, "cancelled", "partially_refunded", "250000", "200000"), "5000",
                            status="partially_refunded", refunded="200000")
        await book("grooming", 3, "rescheduled", "paid", "250000")
        # Money taken for an amount no longer due and returned: no revenue, but its fee was charged.
        await paid_with_fee(await book("grooming", 3, "pending_payment", "pending", "250000"), "1500",
                            status="refunded", refunded="250000", carried=False)
        await book("formula", 5, "completed", "paid", "99999.50")
        await book("formula", 9, "cancelled", "refunded", "120000", "120000")
        # ... the previous 10 days ...
        await book("grooming", 10, "completed", "paid", "200000")
        await book("grooming", 12, "completed", "paid", "200000")
        await book("formula", 15, "no_show", "paid", "100000")
        # ... and another clinic's, which clinic A's manager must never see (amounts no other figure has).
        await book("check_up", 1, "completed", "paid", FOREIGN_AMOUNTS[0])
        await book("check_up", 11, "completed", "paid", FOREIGN_AMOUNTS[1])
    await services.refresh_booking_analytics()
    manager = await make_person("manager", clinic_id=makassar["clinic_id"])
    other_manager = await make_person("manager", clinic_id=jayapura["clinic_id"])
    return {
        "clinic": makassar, "other_clinic": jayapura, "today": today,
        "grooming": grooming, "formula": formula, "check_up": check_up,
        "manager": manager, "manager_user": await account_services.load_current_user(manager["user_id"]),
        "other_manager": other_manager, "owner": owner, "pet": pet, "slots": slots,
    }


async def test_kpis_equal_sql_over_bookings(world: dict) -> None:
    manager, today = world["manager_user"], world["today"]
    first = today - timedelta(days=9)
    clinic_ids = [world["clinic"]["clinic_id"]]

    report = await services.analytics_report(manager, first, today)

    assert kpi_values(report) == await expected_for(first, today, clinic_ids)
    assert kpi_values(report) == WORLD_KPIS_OF_TEN_DAYS
    # Previous period: the 10 days before, 3 bookings, all paid.
    assert {kpi.key: kpi.previous for kpi in report.kpis} == await expected_for(
        first - timedelta(days=10), first - timedelta(days=1), clinic_ids)
    # One trend row per day, zeros on days without bookings, summing to the KPIs.
    assert [d.day for d in report.daily] == [first + timedelta(days=n) for n in range(10)]
    assert sum(d.figures.bookings for d in report.daily) == 7
    assert report.daily[-5].figures.bookings == 0  # 4 days ago: nothing booked

    grooming_only = await services.analytics_report(manager, first, today, world["clinic"]["clinic_id"],
                                                    world["grooming"]["service_id"])
    assert kpi_values(grooming_only) == await expected_for(first, today, clinic_ids, world["grooming"]["service_id"])
    assert [s.service_name for s in grooming_only.by_service] == ["Grooming"]
    assert [(s.service_name, s.figures.bookings) for s in report.by_service] == [
        ("Grooming", 5), ('=HYPERLINK("http://x.test","click")', 2)]


async def test_change_against_the_previous_period(world: dict) -> None:
    today = world["today"]
    report = await services.analytics_report(world["manager_user"], today - timedelta(days=9), today)
    kpis = {kpi.key: kpi for kpi in report.kpis}

    assert (kpis["bookings"].previous, kpis["bookings"].change, kpis["bookings"].change_percent) == (
        3, 4, Decimal("133.3"))
    assert (kpis["cancelled"].previous, kpis["cancelled"].change, kpis["cancelled"].change_percent) == (
        0, 2, None)  # no division by zero: "n/a"
    assert kpis["revenue"].change == Decimal("899999.50") - Decimal("500000")
    assert kpis["no_show_rate"].previous == Decimal("33.3")  # 1 of 3 visits
    assert kpis["no_show_rate"].change == Decimal("0.0")

    # A period with nothing before it: every change in per cent is n/a, and the rate is n/a itself.
    empty = await services.analytics_report(world["manager_user"], today - timedelta(days=400),
                                            today - timedelta(days=399))
    assert all(kpi.change_percent is None for kpi in empty.kpis)
    assert {kpi.key: kpi.current for kpi in empty.kpis}["no_show_rate"] is None


# The other clinic's amounts. A leak check looks for them as money is written (with a thousands separator,
# or with decimals): random ids on the page (hex digits and dashes) can never contain those.
FOREIGN_AMOUNTS = ("987654", "876543")


def assert_no_foreign_amount(text: str) -> None:
    for amount in FOREIGN_AMOUNTS:
        for written in (f"{amount[:3]},{amount[3:]}", f"{amount[:3]}.{amount[3:]}", f"{amount}.00"):
            assert written not in text, written


async def test_a_manager_never_sees_another_clinics_figures(world: dict, client: httpx.AsyncClient) -> None:
    today = world["today"]
    first = today - timedelta(days=9)
    report = await services.analytics_report(world["manager_user"], first, today, with_rows=True)
    assert report.rows, "the manager's clinic has bookings in the period"
    assert all(row["clinic_id"] == world["clinic"]["clinic_id"] for row in report.rows)
    assert sum(row["total_bookings"] for row in report.rows) == report.current.bookings
    assert report.current.revenue == (await expected_for(first, today, [world["clinic"]["clinic_id"]]))["revenue"]

    client.headers["Accept-Language"] = "en"
    await web_session(client, world["manager"])
    foreign = world["other_clinic"]["clinic_id"]
    for path in (f"/manage/analytics?clinic={foreign}", f"/manage/analytics.csv?clinic={foreign}",
                 # Another clinic's service, with or without our clinic.
                 f"/manage/analytics?service={world['check_up']['service_id']}",
                 f"/manage/analytics?clinic={world['clinic']['clinic_id']}&service={world['check_up']['service_id']}"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert_no_foreign_amount(response.text)
    # The filter offers only the clinics this manager manages.
    page = await client.get("/manage/analytics")
    assert page.status_code == 200
    assert world["clinic"]["name"] in page.text
    assert world["other_clinic"]["name"] not in page.text
    assert "Check-up" not in page.text
    assert_no_foreign_amount(page.text)
    csv = await client.get("/manage/analytics.csv")
    assert csv.status_code == 200 and "Grooming" in csv.text
    assert_no_foreign_amount(csv.text)


async def test_a_manager_of_every_clinic_sees_both(world: dict) -> None:
    everywhere = await make_person("manager", clinic_id=None)
    user = await account_services.load_current_user(everywhere["user_id"])
    today = world["today"]
    first = today - timedelta(days=9)
    both = [world["clinic"]["clinic_id"], world["other_clinic"]["clinic_id"]]
    report = await services.analytics_report(user, first, today, world["other_clinic"]["clinic_id"])
    assert kpi_values(report) == await expected_for(first, today, [world["other_clinic"]["clinic_id"]])
    scope = await services.manager_scope(user)
    assert set(both) <= {clinic.clinic_id for clinic in scope.clinics}


@pytest.mark.parametrize("role", ["owner", "receptionist"])
async def test_only_managers_get_in(world: dict, client: httpx.AsyncClient, role: str) -> None:
    person = await make_person(role, clinic_id=world["clinic"]["clinic_id"] if role == "receptionist" else None)
    await web_session(client, person)
    for path in ("/manage/analytics", "/manage/analytics.csv", "/manage/database"):
        assert (await client.get(path)).status_code == 403, path
    token = await csrf_token(client)
    response = await client.post("/manage/analytics/refresh", data={"_csrf_token": token})
    assert response.status_code == 403
    with pytest.raises(DomainError):
        await services.analytics_report(await account_services.load_current_user(person["user_id"]),
                                        world["today"], world["today"])


async def test_bad_filters_get_a_message(world: dict, client: httpx.AsyncClient) -> None:
    client.headers["Accept-Language"] = "en"
    await web_session(client, world["manager"])
    response = await client.get("/manage/analytics?first_day=2026-13-40")
    assert response.status_code == 422
    response = await client.get("/manage/analytics?first_day=2026-05-10&last_day=2026-05-01")
    assert response.status_code == 422
    response = await client.get("/manage/analytics?clinic=not-a-uuid")
    assert response.status_code == 422
    response = await client.get("/manage/analytics.csv?first_day=0001-01-01&last_day=0001-01-02")
    assert response.status_code == 422
    response = await client.get("/manage/analytics?first_day=2020-01-01&last_day=2026-01-01")
    assert response.status_code == 422
    assert "at most 731 days" in response.text


async def test_the_page_shows_the_figures_and_how_they_are_counted(world: dict, client: httpx.AsyncClient) -> None:
    client.headers["Accept-Language"] = "en"
    await web_session(client, world["manager"])
    today = world["today"]
    first = today - timedelta(days=9)
    response = await client.get(f"/manage/analytics?first_day={first}&last_day={today}")
    assert response.status_code == 200
    html = response.text
    expected = await expected_for(first, today, [world["clinic"]["clinic_id"]])
    for key, value in expected.items():
        match = re.search(rf'data-testid="kpi-{key.replace("_", "-")}" data-value="([^"]*)"', html)
        assert match and match.group(1) == str(value), key
    assert 'data-testid="kpi-cancelled"' in html and 'data-change-percent="n/a"' in html
    assert "How we count" in html and "no-shows ÷ (completed + no-shows)" in html
    assert html.count('data-testid="trend-bar"') == 10
    assert html.count('data-testid="daily-row"') == 10
    assert "<title id=\"trend-title\">" in html
    assert "IDR900,000" in html  # money per locale (English: IDR has no minor unit shown)
    assert 'data-testid="data-as-of"' in html and "Data as of" in html
    assert 'data-testid="nav-analytics"' in html


async def test_csv_equals_sql_over_bookings_and_is_spreadsheet_safe(world: dict, client: httpx.AsyncClient) -> None:
    await web_session(client, world["manager"])
    today = world["today"]
    first = today - timedelta(days=19)
    response = await client.get(f"/manage/analytics.csv?first_day={first}&last_day={today}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="vetbook-analytics-{first.isoformat()}-{today.isoformat()}.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == list(services.CSV_HEADER)
    expected = await sql.fetch(EXPECTED_CSV_ROWS, first, today, [world["clinic"]["clinic_id"]], None)
    # The formula-looking service name gets an apostrophe; everything else as SQL says.
    as_csv = expected_csv(expected)
    assert sorted(rows[1:]) == sorted(as_csv)
    assert any(row[2] == '\'=HYPERLINK("http://x.test","click")' for row in rows[1:])
    # No text cell starts like a formula. A negative amount (net revenue of a day with a gateway fee and no
    # revenue, here -1500.00) is a plain number, which a spreadsheet reads as a number, never runs.
    assert not any(cell.startswith(("=", "+", "-", "@")) and not re.fullmatch(r"-\d+\.\d\d", cell)
                   for row in rows[1:] for cell in row)
    assert "99999.50" in response.text and "250000.00" in response.text
    assert "-1500.00" in response.text


def test_spreadsheet_safe() -> None:
    assert [services.spreadsheet_safe(text) for text in ("=1+1", "+62 21", "-5", "@SUM(A1)", "Grooming", "")] == [
        "'=1+1", "'+62 21", "'-5", "'@SUM(A1)", "Grooming", ""]


async def test_refresh_now_refreshes_and_is_rate_limited(world: dict, client: httpx.AsyncClient) -> None:
    client.headers["Accept-Language"] = "en"
    await web_session(client, world["manager"])
    today = world["today"]
    before = await services.data_as_of()
    report = await services.analytics_report(world["manager_user"], today, today)
    assert report.current.bookings == 1
    # A new booking made now: not in the view until it is refreshed.
    async with sql.connection() as conn:
        await make_booking_at(conn, world["slots"]["grooming"], world["owner"], world["pet"], datetime.now(UTC),
                              "confirmed", "paid", "150000")
    assert (await services.analytics_report(world["manager_user"], today, today)).current.bookings == 1

    token = await csrf_token(client, "/manage/analytics")
    response = await client.post("/manage/analytics/refresh",
                                 data={"_csrf_token": token, "first_day": today.isoformat(), "last_day": today.isoformat(),
                                       "clinic": str(world["clinic"]["clinic_id"]), "service": ""})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/manage/analytics?first_day=")
    assert (await services.analytics_report(world["manager_user"], today, today)).current.bookings == 2
    assert await services.data_as_of() > before

    again = await client.post("/manage/analytics/refresh", data={"_csrf_token": token})
    assert again.status_code == 429
    assert 1 <= int(again.headers["retry-after"]) <= 60
    assert "Please wait a minute" in again.text
    assert 'data-testid="kpi-bookings"' in again.text  # the page itself, with the message


async def test_the_hourly_job_records_when_it_refreshed(app) -> None:
    from web.app import background_jobs
    from web.core.jobs import run_once_if_free

    job = next(job for job in background_jobs() if job.name == "refresh_booking_analytics")
    before = await services.data_as_of()
    assert await run_once_if_free(job)
    assert await services.data_as_of() > before


@pytest.mark.parametrize("language", ["id", "ja"])
async def test_the_pages_render_in_every_language(world: dict, client: httpx.AsyncClient, language: str) -> None:
    client.headers["Accept-Language"] = language
    await web_session(client, world["manager"])
    # The database health page is for managers of every clinic.
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url,
                                 headers={"Accept-Language": language}) as everywhere:
        await web_session(everywhere, await make_person("manager", clinic_id=None))
        for http, path in ((client, "/manage/analytics"), (everywhere, "/manage/database")):
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-language"] == language
    if language == "id":
        page = await client.get(f"/manage/analytics?first_day={world['today']}&last_day={world['today']}")
        assert "Rp250.000" in page.text  # rupiah the Indonesian way
