"""Slot generation from a weekly template, and blocking: web/slots/generation.py against a real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.booking.helpers import book, clinic_scene, owner, paid_booking, slot, snapshot
from tests.db.factories import local_start, make_clinic, make_service, make_user
from web.accounts.services import load_current_user
from web.booking import services as booking_services
from web.core.errors import InvalidInput, NotFound
from web.core.shard_keys import new_id
from web.slots import blocking, generation
from web.slots import statements as slot_statements
from web.slots.blocking import SlotsHaveBookings
from web.slots.generation import SlotTemplate, StaffOverlap

EVERY_DAY = frozenset(range(7))


def tomorrow(zone: str):
    return datetime.now(ZoneInfo(zone)).date() + timedelta(days=1)


def template(scene, **overrides) -> SlotTemplate:
    values = {"weekdays": EVERY_DAY, "opening": time(9, 0), "closing": time(12, 0),
              "service_id": scene.service["service_id"], "staff_id": scene.staff["staff_id"],
              "length_minutes": None, "capacity": 2, "price": None}
    return SlotTemplate(**(values | overrides))


async def count_slots(conn: asyncpg.Connection, clinic_id) -> int:
    return await conn.fetchval("SELECT count(*) FROM slots WHERE clinic_id = $1", clinic_id)


async def test_generating_twice_creates_nothing_new(own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    first = tomorrow(scene.clinic["timezone"])
    last = first + timedelta(days=6)
    actor = scene.receptionist.user

    result = await generation.generate_slots(actor, scene.clinic["clinic_id"], template(scene), first, last)

    # 09:00-12:00 in 30-minute slots (the service's duration): 6 a day, 7 days.
    assert (result.created, result.existing) == (42, 0)
    assert await count_slots(conn, scene.clinic["clinic_id"]) == 42
    rows = await conn.fetch("SELECT * FROM slots WHERE clinic_id = $1", scene.clinic["clinic_id"])
    assert {row["capacity"] for row in rows} == {2} and {row["remaining"] for row in rows} == {2}
    assert {row["status"] for row in rows} == {"available"}
    assert {row["price"] for row in rows} == {None}  # the service's price applies
    assert {row["created_by"] for row in rows} == {scene.receptionist.user_id}

    again = await generation.generate_slots(actor, scene.clinic["clinic_id"], template(scene), first, last)

    assert (again.created, again.existing) == (0, 42)
    assert await count_slots(conn, scene.clinic["clinic_id"]) == 42


async def test_generation_without_staff_is_idempotent_too(own_database, conn: asyncpg.Connection) -> None:
    # staff_id NULL: the unique constraint is NULLS NOT DISTINCT, so ON CONFLICT still finds the twin.
    scene = await clinic_scene(conn)
    first = tomorrow(scene.clinic["timezone"])
    no_staff = template(scene, staff_id=None, price=Decimal("99000"), length_minutes=60)
    created = await generation.generate_slots(scene.receptionist.user, scene.clinic["clinic_id"], no_staff,
                                              first, first)
    again = await generation.generate_slots(scene.receptionist.user, scene.clinic["clinic_id"], no_staff,
                                            first, first)
    assert (created.created, again.created, again.existing) == (3, 0, 3)
    prices = await conn.fetch("SELECT DISTINCT price FROM slots WHERE clinic_id = $1", scene.clinic["clinic_id"])
    assert [row["price"] for row in prices] == [Decimal("99000.00")]


@pytest.mark.parametrize(("zone", "offset_hours"), [("Asia/Jakarta", 7), ("Asia/Makassar", 8),
                                                     ("Asia/Jayapura", 9)])
async def test_slots_are_laid_in_the_clinic_local_time(own_database, conn: asyncpg.Connection, zone: str,
                                                       offset_hours: int) -> None:
    scene = await clinic_scene(conn, timezone=zone)
    day = tomorrow(zone)
    # 06:00-07:00 local is the previous UTC day in all three zones; 22:00-23:30 is late in the local day.
    for opening, closing in ((time(6, 0), time(7, 0)), (time(22, 0), time(23, 30))):
        await generation.generate_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                        template(scene, opening=opening, closing=closing), day, day)
    rows = await conn.fetch("SELECT date, start_time, end_time FROM slots WHERE clinic_id = $1 ORDER BY start_time",
                            scene.clinic["clinic_id"])
    midnight_utc = datetime(day.year, day.month, day.day, tzinfo=UTC)
    expected_local_hours = [(6, 0), (6, 30), (22, 0), (22, 30), (23, 0)]
    assert [row["start_time"] for row in rows] == [
        midnight_utc + timedelta(hours=hour - offset_hours, minutes=minute) for hour, minute in expected_local_hours
    ]
    assert {row["date"] for row in rows} == {day}  # the clinic-local day, also for the 06:00 slots
    assert all(row["end_time"] - row["start_time"] == timedelta(minutes=30) for row in rows)


async def test_overlap_for_the_same_staff_member_is_refused_and_nothing_is_written(
        own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    day = tomorrow(scene.clinic["timezone"])
    other_service = await make_service(conn, scene.clinic, duration_minutes=45)
    await generation.generate_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                    template(scene, opening=time(10, 0), closing=time(11, 0)), day, day)
    before = await snapshot(conn)

    with pytest.raises(StaffOverlap) as refused:
        await generation.generate_slots(
            scene.receptionist.user, scene.clinic["clinic_id"],
            template(scene, service_id=other_service["service_id"], opening=time(9, 0), closing=time(12, 0)),
            day, day + timedelta(days=2))

    assert refused.value.status == 409
    assert f"{day:%Y-%m-%d} 10:00–10:30 WIB" in refused.value.detail
    assert f"{day:%Y-%m-%d} 10:30–11:00 WIB" in refused.value.detail
    assert len(refused.value.clashes) == 2  # 09:45-10:30 and 10:30-11:15 clash with 10:00 / 10:30 slots
    assert await snapshot(conn) == before


async def test_a_concurrent_overlap_reaching_the_exclusion_constraint_becomes_a_409(
        own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    day = tomorrow(scene.clinic["timezone"])
    other_service = await make_service(conn, scene.clinic, duration_minutes=30)
    results = await asyncio.gather(*(
        generation.generate_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                  template(scene, service_id=service_id), day, day)
        for service_id in (scene.service["service_id"], other_service["service_id"])
    ), return_exceptions=True)
    # Both may pass the check before either commits: the constraint then refuses one, as a 409.
    assert sorted(type(result).__name__ for result in results) == ["GenerationResult", "StaffOverlap"]
    assert await count_slots(conn, scene.clinic["clinic_id"]) == 6


@pytest.mark.parametrize(("overrides", "field"), [
    ({"opening": time(12, 0), "closing": time(9, 0)}, "closing"),
    ({"capacity": 0}, "capacity"),
    ({"weekdays": frozenset()}, "weekdays"),
    ({"length_minutes": 2}, "length_minutes"),
    ({"price": Decimal("-1")}, "price"),
])
async def test_bad_templates_are_refused_and_nothing_is_written(own_database, conn: asyncpg.Connection,
                                                                 overrides, field) -> None:
    scene = await clinic_scene(conn)
    day = tomorrow(scene.clinic["timezone"])
    with pytest.raises(InvalidInput) as refused:
        await generation.generate_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                        template(scene, **overrides), day, day)
    assert field in refused.value.field_errors
    assert await count_slots(conn, scene.clinic["clinic_id"]) == 0


async def test_bad_ranges_are_refused(own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    day = tomorrow(scene.clinic["timezone"])
    cases = [(day, day - timedelta(days=1), "last_day"), (day, day + timedelta(days=62), "last_day"),
             (day - timedelta(days=3), day, "first_day"), (None, day, "first_day")]
    for first, last, field in cases:
        with pytest.raises(InvalidInput) as refused:
            await generation.generate_slots(scene.receptionist.user, scene.clinic["clinic_id"], template(scene),
                                            first, last)
        assert field in refused.value.field_errors, (first, last, refused.value.field_errors)
    assert await count_slots(conn, scene.clinic["clinic_id"]) == 0


async def test_staff_of_another_clinic_get_not_found(own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    other_clinic = await make_clinic(conn)
    stranger = await load_current_user((await make_user(conn, role="receptionist", clinic=other_clinic))["user_id"])
    day = tomorrow(scene.clinic["timezone"])
    with pytest.raises(NotFound):
        await generation.generate_slots(stranger, scene.clinic["clinic_id"], template(scene), day, day)
    with pytest.raises(NotFound):
        await blocking.block_slots(stranger, scene.clinic["clinic_id"], first_day=day, last_day=day)
    # Another clinic's service or staff member is an input error at one's own clinic.
    mine = await clinic_scene(conn)
    with pytest.raises(InvalidInput) as refused:
        await generation.generate_slots(mine.receptionist.user, mine.clinic["clinic_id"], template(scene), day, day)
    assert set(refused.value.field_errors) == {"service_id", "staff_id"}


# ------------------------------------------------------------------ blocking


async def test_blocking_a_slot_with_active_bookings_is_refused_naming_them(
        own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    customer = await owner(conn)
    busy = await slot(conn, scene)
    free = await slot(conn, scene, hour=11)
    booking = await book(customer, busy)
    before = await snapshot(conn)

    with pytest.raises(SlotsHaveBookings) as refused:
        await blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                     slot_ids=[busy["slot_id"], free["slot_id"]])

    code = booking["booking_code"]
    assert f"{code[:4]}-{code[4:]}" in refused.value.detail and "Pet 0" in refused.value.detail
    assert "full refund" in refused.value.detail
    assert [b.booking_id for b in refused.value.bookings] == [booking["booking_id"]]
    assert await snapshot(conn) == before


async def test_a_pending_hold_also_prevents_blocking(own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    customer = await owner(conn)
    held_slot = await slot(conn, scene)
    await booking_services.hold(customer.user, held_slot["slot_id"], customer.pet["pet_id"])
    with pytest.raises(SlotsHaveBookings) as refused:
        await blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                     slot_ids=[held_slot["slot_id"]])
    assert refused.value.holds == 1
    assert (await conn.fetchval("SELECT status FROM slots WHERE slot_id = $1", held_slot["slot_id"])) == "available"


async def test_cancel_and_block_refunds_paid_bookings_in_full(own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    customer = await owner(conn, pets=2)
    target = await slot(conn, scene, capacity=3)
    paid = await paid_booking(customer, target, customer.pets[0])
    unpaid = await book(customer, target, customer.pets[1])
    other = await owner(conn)
    await booking_services.hold(other.user, target["slot_id"], other.pet["pet_id"])

    result = await blocking.cancel_bookings_and_block(
        scene.receptionist.user, scene.clinic["clinic_id"], slot_ids=[target["slot_id"]], reason="leave")

    assert (result.changed, result.released_holds) == (1, 1)
    assert sorted(result.cancelled_bookings) == sorted([paid["booking_id"], unpaid["booking_id"]])
    rows = {row["booking_id"]: row for row in await conn.fetch(
        "SELECT booking_id, status, payment_status, refunded_amount, final_amount, cancellation_reason "
        "FROM bookings WHERE slot_id = $1", target["slot_id"])}
    paid_row, unpaid_row = rows[paid["booking_id"]], rows[unpaid["booking_id"]]
    assert paid_row["status"] == "cancelled" and paid_row["payment_status"] == "refunded"
    assert paid_row["refunded_amount"] == paid_row["final_amount"] == Decimal("150000.00")
    assert paid_row["cancellation_reason"] == "clinic_request"
    assert (unpaid_row["status"], unpaid_row["payment_status"], unpaid_row["refunded_amount"]) == (
        "cancelled", "failed", Decimal("0"))
    payment = await conn.fetchrow("SELECT status, refund_amount FROM payment_records WHERE booking_id = $1",
                                  paid["booking_id"])
    assert (payment["status"], payment["refund_amount"]) == ("refunded", Decimal("150000.00"))
    blocked = await conn.fetchrow("SELECT status, remaining, capacity FROM slots WHERE slot_id = $1",
                                  target["slot_id"])
    assert (blocked["status"], blocked["remaining"]) == ("unavailable", 3)
    assert await booking_services.slot_invariant_violations() == []
    history = await conn.fetch("SELECT changed_by, change_reason FROM booking_history WHERE booking_id = $1 "
                               "AND new_status = 'cancelled'", paid["booking_id"])
    assert [(row["changed_by"], row["change_reason"]) for row in history] == [
        (scene.receptionist.user_id, "clinic_request")]


async def test_a_hold_on_a_blocked_slot_is_refused_and_unblocking_opens_it(
        own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    customer = await owner(conn)
    target = await slot(conn, scene)
    day = target["date"]
    result = await blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                          first_day=day, last_day=day, reason="maintenance")
    assert (result.changed, result.unchanged) == (1, 0)

    with pytest.raises(booking_services.SlotUnavailable) as refused:
        await booking_services.hold(customer.user, target["slot_id"], customer.pet["pet_id"])
    assert "not open for booking" in refused.value.detail
    again = await blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                         slot_ids=[target["slot_id"]])
    assert (again.changed, again.unchanged) == (0, 1)

    opened = await blocking.unblock_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                            slot_ids=[target["slot_id"]])
    assert opened.changed == 1
    held = await booking_services.hold(customer.user, target["slot_id"], customer.pet["pet_id"])
    assert held["slot_id"] == target["slot_id"]


async def test_blocking_needs_a_selection(own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    with pytest.raises(InvalidInput):
        await blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"])
    with pytest.raises(InvalidInput):
        await blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                     first_day=tomorrow("Asia/Jakarta"), last_day=None)
    with pytest.raises(InvalidInput):
        await blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                     first_day=tomorrow("Asia/Jakarta"), last_day=tomorrow("Asia/Jakarta"),
                                     reason="holiday")


async def test_a_hold_and_a_block_racing_on_one_slot_end_consistently(own_database, conn: asyncpg.Connection) -> None:
    scene = await clinic_scene(conn)
    outcomes = set()
    for round_number in range(6):
        customer = await owner(conn)
        target = await slot(conn, scene, hour=8 + round_number)
        hold_result, block_result = await asyncio.gather(
            booking_services.hold(customer.user, target["slot_id"], customer.pet["pet_id"]),
            blocking.block_slots(scene.receptionist.user, scene.clinic["clinic_id"],
                                   slot_ids=[target["slot_id"]]),
            return_exceptions=True,
        )
        row = await conn.fetchrow("SELECT status, remaining FROM slots WHERE slot_id = $1", target["slot_id"])
        holds = await conn.fetchval("SELECT count(*) FROM reservations WHERE slot_id = $1 AND status = 'pending'",
                                    target["slot_id"])
        if isinstance(hold_result, BaseException):
            # The block won: the hold was refused and the slot is blocked with its place.
            assert isinstance(hold_result, booking_services.SlotUnavailable), hold_result
            assert not isinstance(block_result, BaseException), block_result
            assert (row["status"], row["remaining"], holds) == ("maintenance", 1, 0)
            outcomes.add("block won")
        else:
            # The hold won: the block was refused (it saw the hold) and the slot stays open.
            assert isinstance(block_result, SlotsHaveBookings), block_result
            assert (row["status"], row["remaining"], holds) == ("available", 0, 1)
            outcomes.add("hold won")
    assert await booking_services.slot_invariant_violations() == []
    assert outcomes  # which one wins is up to the scheduler; each round ended consistently


async def test_the_insert_does_not_swallow_staff_overlaps(own_database, conn: asyncpg.Connection) -> None:
    # ON CONFLICT names the identity constraint: an overlap reaching the insert (past the check) is an
    # exclusion violation, never a silently skipped slot.
    scene = await clinic_scene(conn)
    start = local_start(scene.clinic, days_ahead=2, hour=10)
    clinic_id = scene.clinic["clinic_id"]
    await conn.execute(slot_statements.INSERT_GENERATED, clinic_id, scene.service["service_id"],
                       scene.staff["staff_id"], 1, None, None, [new_id(clinic_id, start.date())], [start.date()],
                       [start], [start + timedelta(minutes=30)])
    other = await make_service(conn, scene.clinic)
    with pytest.raises(asyncpg.ExclusionViolationError):
        await conn.execute(slot_statements.INSERT_GENERATED, clinic_id, other["service_id"],
                           scene.staff["staff_id"], 1, None, None, [new_id(clinic_id, start.date())],
                           [start.date()], [start + timedelta(minutes=10)], [start + timedelta(minutes=40)])
