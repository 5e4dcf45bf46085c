"""booking_analytics_daily (3.2, fixed): clinic-local days, revenue as money kept, rescheduled counted once;
revenue gross, refunds and the gateways' fees beside it (migration 0024).

The expected numbers are computed twice: in Python from the bookings rows (local day through zoneinfo), and
by a hand-written SQL over bookings (tests/analytics/expected.py); the view must equal both after REFRESH ...
CONCURRENTLY.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.analytics.expected import DAILY_FIGURES
from tests.db.factories import (
    make_booking_at,
    make_clinic,
    make_payment,
    make_pet,
    make_service,
    make_slot,
    make_user,
)

UTC = ZoneInfo("UTC")
PAID_STATES = ("paid", "partially_refunded", "refunded")
COLUMNS = (
    "total_bookings", "completed_bookings", "cancelled_bookings", "no_show_bookings", "rescheduled_bookings",
    "total_revenue", "paid_bookings", "avg_booking_value", "gross_revenue", "refunded_amount", "gateway_fees",
)
SETTLED = ("completed", "refunded", "partially_refunded")

def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def build_bookings(conn: asyncpg.Connection) -> dict:
    for month in ("2025-08-01", "2025-09-01"):
        await conn.execute("SELECT vetbook_create_month_partitions($1::date)", date.fromisoformat(month))
    jakarta = await make_clinic(conn, timezone="Asia/Jakarta")  # UTC+7
    jayapura = await make_clinic(conn, timezone="Asia/Jayapura")  # UTC+9
    grooming = await make_service(conn, jakarta, name="Grooming")
    vaccination = await make_service(conn, jakarta, name="Vaccination")
    check_up = await make_service(conn, jayapura, name="Check-up")
    owner = await make_user(conn)
    pet = await make_pet(conn, owner)
    slots = {
        key: await make_slot(conn, clinic, service, start=datetime(2025, 9, 10, 10, 0, tzinfo=ZoneInfo(clinic["timezone"])))
        for key, clinic, service in (("grooming", jakarta, grooming), ("vaccination", jakarta, vaccination),
                                     ("check_up", jayapura, check_up))
    }

    async def book(slot: str, created_at: datetime, status: str, payment_status: str, amount: str,
                   refunded: str = "0", discount: str = "0") -> dict:
        return await make_booking_at(conn, slots[slot], owner, pet, created_at, status, payment_status, amount,
                                     refunded, discount)

    bookings = {
        # Jakarta, around its midnight 31 Aug / 1 Sep (17:00 UTC), and through 1 September.
        "j_last_second_of_aug_31": await book("grooming", utc(2025, 8, 31, 16, 59, 59), "confirmed", "paid", "100000"),
        "j_first_second_of_sep_1": await book("grooming", utc(2025, 8, 31, 17), "completed", "paid", "200000"),
        "j_partly_refunded": await book("grooming", utc(2025, 9, 1, 2), "cancelled", "partially_refunded", "100000", "90000"),
        "j_fully_refunded": await book("grooming", utc(2025, 9, 1, 3), "cancelled", "refunded", "50000", "50000"),
        "j_rescheduled": await book("grooming", utc(2025, 9, 1, 4), "rescheduled", "paid", "80000"),
        "j_unpaid": await book("grooming", utc(2025, 9, 1, 5), "pending_payment", "pending", "70000"),
        "j_no_show": await book("grooming", utc(2025, 9, 1, 6), "no_show", "paid", "60000"),
        "j_cancelled_without_refund": await book("grooming", utc(2025, 9, 1, 7), "cancelled", "paid", "40000"),
        "j_payment_failed": await book("grooming", utc(2025, 9, 1, 8), "cancelled", "failed", "30000"),
        "j_discounted": await book("vaccination", utc(2025, 9, 1, 16, 59, 59), "completed", "paid", "140000",
                                   discount="20000"),
        "j_sep_2": await book("vaccination", utc(2025, 9, 1, 17), "confirmed", "paid", "125000"),
        # Jayapura, around its midnight (15:00 UTC): 16:30 UTC is 1 September there, still 31 August in Jakarta.
        "p_last_second_of_aug_31": await book("check_up", utc(2025, 8, 31, 14, 59, 59), "confirmed", "paid", "90000"),
        "p_midnight": await book("check_up", utc(2025, 8, 31, 15), "in_progress", "paid", "110000"),
        "p_after_midnight": await book("check_up", utc(2025, 8, 31, 16, 30), "no_show", "paid", "95000"),
    }
    return {"jakarta": jakarta, "jayapura": jayapura, "bookings": bookings,
            "services": {"grooming": grooming, "vaccination": vaccination, "check_up": check_up}}


async def expected_from_rows(conn: asyncpg.Connection) -> dict[tuple, dict]:
    """The view's rows, computed in Python from the bookings table."""
    rows = await conn.fetch(
        "SELECT b.*, c.timezone FROM bookings b JOIN clinics c USING (clinic_id)"
    )
    payments = {row["payment_id"]: row for row in await conn.fetch("SELECT * FROM payment_records")}

    def fees(booking) -> Decimal:
        """The booking's gateway fees: of the settled payment it carries (unless rescheduled: its replacement
        carries it), and of settled payments started for it that it does not carry."""
        total = Decimal("0")
        carried = payments.get(booking["payment_id"])
        if booking["status"] != "rescheduled" and carried and carried["status"] in SETTLED:
            total += carried["transaction_fee"] or 0
        for payment in payments.values():
            if (payment["booking_id"], payment["booking_created_at"]) == (booking["booking_id"], booking["created_at"]) \
                    and payment["status"] in SETTLED and payment["payment_id"] != booking["payment_id"]:
                total += payment["transaction_fee"] or 0
        return total

    groups: dict[tuple, list] = defaultdict(list)
    for row in rows:
        local_day = row["created_at"].astimezone(ZoneInfo(row["timezone"])).date()
        groups[(row["clinic_id"], local_day, row["service_id"])].append(row)
    expected = {}
    for key, members in groups.items():
        counted = [b for b in members if b["status"] != "rescheduled"]
        paid = [b for b in counted if b["payment_status"] in PAID_STATES]
        valued = [b["final_amount"] for b in members if b["status"] not in ("rescheduled", "cancelled")]
        expected[key] = {
            "total_bookings": len(counted),
            "completed_bookings": sum(b["status"] == "completed" for b in members),
            "cancelled_bookings": sum(b["status"] == "cancelled" for b in members),
            "no_show_bookings": sum(b["status"] == "no_show" for b in members),
            "rescheduled_bookings": sum(b["status"] == "rescheduled" for b in members),
            "total_revenue": sum((b["final_amount"] - b["refunded_amount"] for b in paid), Decimal("0")),
            "paid_bookings": len(paid),
            "avg_booking_value": (
                (sum(valued) / len(valued)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if valued else None
            ),
            "gross_revenue": sum((b["final_amount"] for b in paid), Decimal("0")),
            "refunded_amount": sum((b["refunded_amount"] for b in paid), Decimal("0")),
            "gateway_fees": sum((fees(b) for b in members), Decimal("0")),
        }
    return expected


def keyed(rows: list[asyncpg.Record]) -> dict[tuple, dict]:
    return {
        (row["clinic_id"], row["booking_date"], row["service_id"]): {column: row[column] for column in COLUMNS}
        for row in rows
    }


async def view_rows(conn: asyncpg.Connection) -> dict[tuple, dict]:
    return keyed(await conn.fetch("SELECT * FROM booking_analytics_daily"))


async def test_view_matches_bookings_by_clinic_local_day_after_concurrent_refresh(conn: asyncpg.Connection) -> None:
    world = await build_bookings(conn)
    # The session's zone must not matter: the day is the clinic's.
    await conn.execute("SET TimeZone = 'America/New_York'")

    await conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily")

    view = await view_rows(conn)
    assert view == keyed(await conn.fetch(DAILY_FIGURES))
    assert view == await expected_from_rows(conn)

    jakarta, jayapura = world["jakarta"]["clinic_id"], world["jayapura"]["clinic_id"]
    grooming = world["services"]["grooming"]["service_id"]
    vaccination = world["services"]["vaccination"]["service_id"]
    check_up = world["services"]["check_up"]["service_id"]
    assert set(view) == {
        (jakarta, date(2025, 8, 31), grooming),
        (jakarta, date(2025, 9, 1), grooming),
        (jakarta, date(2025, 9, 1), vaccination),
        (jakarta, date(2025, 9, 2), vaccination),
        (jayapura, date(2025, 8, 31), check_up),
        (jayapura, date(2025, 9, 1), check_up),
    }
    # Jakarta's 1 September, grooming: every kind of booking at once, worked out by hand.
    assert view[(jakarta, date(2025, 9, 1), grooming)] == {
        "total_bookings": 7,  # the rescheduled one is counted by its replacement, not here
        "completed_bookings": 1,
        "cancelled_bookings": 4,  # refunded in part, in full, not at all, and the failed payment
        "no_show_bookings": 1,
        "rescheduled_bookings": 1,
        # 200000 completed + 10000 kept of the partial refund + 0 of the full refund + 60000 no-show
        # + 40000 cancelled without refund; not the unpaid, failed or rescheduled ones.
        "total_revenue": Decimal("310000.00"),
        "paid_bookings": 5,
        "avg_booking_value": Decimal("110000.00"),  # completed, unpaid and no-show: (200000 + 70000 + 60000) / 3
        # Paid before refunds: 200000 + 100000 + 50000 + 60000 + 40000, of which 90000 + 50000 returned; no
        # payment rows here, so no fees.
        "gross_revenue": Decimal("450000.00"), "refunded_amount": Decimal("140000.00"), "gateway_fees": Decimal("0.00"),
    }
    assert view[(jakarta, date(2025, 9, 1), vaccination)]["total_revenue"] == Decimal("120000.00")
    assert view[(jayapura, date(2025, 9, 1), check_up)]["total_bookings"] == 2
    assert view[(jayapura, date(2025, 8, 31), check_up)]["total_bookings"] == 1


async def test_concurrent_refresh_picks_up_changes(conn: asyncpg.Connection) -> None:
    world = await build_bookings(conn)
    await conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily")
    before = await view_rows(conn)
    jakarta = world["jakarta"]["clinic_id"]
    grooming = world["services"]["grooming"]["service_id"]

    # The paid booking of 31 August is cancelled with a full refund, and the unpaid one of 1 September is paid.
    await conn.execute(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), payment_status = 'refunded', "
        "refunded_amount = final_amount WHERE booking_id = $1",
        world["bookings"]["j_last_second_of_aug_31"]["booking_id"],
    )
    await conn.execute(
        "UPDATE bookings SET status = 'confirmed', payment_status = 'paid' WHERE booking_id = $1",
        world["bookings"]["j_unpaid"]["booking_id"],
    )
    # A stale view until the refresh.
    assert await view_rows(conn) == before

    await conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily")

    after = await view_rows(conn)
    assert after == keyed(await conn.fetch(DAILY_FIGURES)) == await expected_from_rows(conn)
    aug_31 = after[(jakarta, date(2025, 8, 31), grooming)]
    assert (aug_31["total_revenue"], aug_31["cancelled_bookings"], aug_31["avg_booking_value"]) == (
        Decimal("0"), 1, None
    )
    sep_1 = after[(jakarta, date(2025, 9, 1), grooming)]
    assert sep_1["total_revenue"] == before[(jakarta, date(2025, 9, 1), grooming)]["total_revenue"] + Decimal("70000")
    assert sep_1["paid_bookings"] == 6
    changed = {(jakarta, date(2025, 8, 31), grooming), (jakarta, date(2025, 9, 1), grooming)}
    assert {key: row for key, row in after.items() if key not in changed} == {
        key: row for key, row in before.items() if key not in changed
    }


async def test_concurrent_refresh_needs_the_unique_index(conn: asyncpg.Connection) -> None:
    unique = await conn.fetchval(
        "SELECT indisunique AND indpred IS NULL FROM pg_index WHERE indexrelid = 'booking_analytics_daily_unique_idx'::regclass"
    )
    assert unique is True
    await conn.execute("DROP INDEX booking_analytics_daily_unique_idx")
    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="concurrently"):
        await conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily")


async def test_gateway_fees_are_counted_once_where_the_revenue_is(conn: asyncpg.Connection) -> None:
    """A fee belongs to the booking that carries its payment: after a reschedule, to the replacement (made on
    another day), never to both; a settled payment no booking carries (money taken for an amount no longer due,
    and returned) is counted on the booking it was started for; a payment that took nothing brings no fee."""
    await conn.execute("SELECT vetbook_create_month_partitions($1::date)", date(2025, 9, 1))
    clinic = await make_clinic(conn, timezone="Asia/Jakarta")
    service = await make_service(conn, clinic, name="Grooming")
    owner = await make_user(conn)
    pet = await make_pet(conn, owner)
    slot = await make_slot(conn, clinic, service, start=datetime(2025, 9, 20, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta")))

    async def book(created: datetime, status: str, payment_status: str) -> dict:
        return await make_booking_at(conn, slot, owner, pet, created, status, payment_status, "100000")

    async def pay(booking: dict, fee: str | None, status: str = "completed", carriers: tuple = ()) -> None:
        payment = await make_payment(conn, booking, status=status, transaction_fee=Decimal(fee) if fee else None,
                                     **({"paid_at": booking["created_at"]} if status in SETTLED else {}),
                                     **({"refund_amount": booking["final_amount"], "refunded_at": booking["created_at"]}
                                        if status == "refunded" else {}))
        for carrier in carriers:
            await conn.execute("UPDATE bookings SET payment_id = $3 WHERE booking_id = $1 AND created_at = $2",
                               carrier["booking_id"], carrier["created_at"], payment["payment_id"])

    moved = await book(utc(2025, 9, 1, 3), "rescheduled", "paid")  # 1 Sep in Jakarta
    replacement = await book(utc(2025, 9, 2, 3), "confirmed", "paid")  # 2 Sep: the moved booking's replacement
    await pay(moved, "3000", carriers=(moved, replacement))
    plain = await book(utc(2025, 9, 1, 4), "completed", "paid")
    await pay(plain, "2500", carriers=(plain,))
    waiting = await book(utc(2025, 9, 1, 5), "pending_payment", "pending")
    await pay(waiting, "700", status="refunded")  # returned: nobody carries it
    await pay(waiting, "999", status="failed")  # took nothing
    no_fee = await book(utc(2025, 9, 1, 6), "completed", "paid")
    await pay(no_fee, None, carriers=(no_fee,))  # the gateway reported no fee

    await conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY booking_analytics_daily")

    view = await view_rows(conn)
    assert view == keyed(await conn.fetch(DAILY_FIGURES)) == await expected_from_rows(conn)
    grooming = service["service_id"]
    sep_1, sep_2 = view[(clinic["clinic_id"], date(2025, 9, 1), grooming)], view[(clinic["clinic_id"], date(2025, 9, 2), grooming)]
    assert sep_1["gateway_fees"] == Decimal("3200.00")  # 2500 + 700; the moved booking's fee went with it
    assert sep_2["gateway_fees"] == Decimal("3000.00")
    assert (sep_1["gross_revenue"], sep_1["refunded_amount"], sep_1["total_revenue"]) == (
        Decimal("200000.00"), Decimal("0.00"), Decimal("200000.00"))
