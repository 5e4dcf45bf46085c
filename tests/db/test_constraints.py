"""Every schema rule refuses the row that breaks it, and the error names the rule.

For each CHECK, foreign key, exclusion constraint, unique constraint and unique index of the schema (and
the two rules the slot trigger raises), a test starts from a valid row, changes one thing, and asserts
that asyncpg raises the matching exception class, that the error's ``constraint_name`` is the rule's name
(for a unique index: the index name; on a partition, PostgreSQL names the partition's copy of the rule,
which ``rule_named_by`` traces to the declared rule), and that the table holds no new row afterwards.
``test_every_schema_rule_has_a_case`` reads the rules from the catalog and fails when one has no case here.

Speed: the cases share one database cloned from the migrated template, and one set of valid rows written in a
transaction that is rolled back at the end; each test runs in a savepoint of it that is rolled back after
the test, and each refused statement runs in a savepoint of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from asyncpg.exceptions import (
    CheckViolationError,
    ExclusionViolationError,
    ForeignKeyViolationError,
    NotNullViolationError,
    RestrictViolationError,
    UniqueViolationError,
)

from tests.conftest import cloned_database, connected
from tests.db.factories import (
    insert,
    local_start,
    make_booking,
    make_clinic,
    make_payment,
    make_pet,
    make_reservation,
    make_service,
    make_slot,
    make_staff,
    make_user,
)
from web.core.shard_keys import new_id

PRICE = Decimal("150000")


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
async def module_conn(pg_server, template_database) -> AsyncIterator[asyncpg.Connection]:
    """One database for the whole module: a clone per case would cost more than all the cases together."""
    with cloned_database(pg_server, template_database, "c") as url:
        async with connected(url) as connection:
            yield connection


@dataclass
class World:
    """Valid rows every case starts from; the ``other_*`` rows belong to another clinic or owner."""

    conn: asyncpg.Connection
    clinic: dict
    service: dict
    second_service: dict  # same clinic as ``service``
    staff: dict
    owner: dict
    pet: dict
    slot: dict  # staffed, 10:00-10:30 local, a week ahead
    open_slot: dict  # no staff, 11:00-11:30 local, same day
    free_start: datetime  # 14:00 local that day: nothing starts there yet
    reservation: dict  # on ``slot``
    booking: dict  # confirmed and paid, on ``slot``, from ``reservation``
    payment: dict  # the booking's completed payment
    history: dict  # the booking's pending_payment -> confirmed row
    unpaid_booking: dict  # pending_payment, on ``open_slot``, no payment yet
    other_clinic: dict
    other_service: dict
    other_staff: dict
    other_owner: dict
    other_pet: dict
    manager: dict


async def make_history(conn: asyncpg.Connection, booking: dict, **overrides: Any) -> dict:
    values = {
        "clinic_id": booking["clinic_id"],
        "history_id": new_id(booking["clinic_id"], datetime.now(UTC).date()),
        "booking_id": booking["booking_id"],
        "booking_created_at": booking["created_at"],
        "previous_status": "pending_payment",
        "new_status": "confirmed",
    }
    return await insert(conn, "booking_history", values | overrides)


async def build_world(conn: asyncpg.Connection) -> World:
    clinic = await make_clinic(conn)
    service = await make_service(conn, clinic)
    second_service = await make_service(conn, clinic)
    staff = await make_staff(conn, clinic)
    owner = await make_user(conn)
    pet = await make_pet(conn, owner)
    slot = await make_slot(conn, clinic, service, staff, start=local_start(clinic, hour=10))
    open_slot = await make_slot(conn, clinic, service, None, start=local_start(clinic, hour=11))
    reservation = await make_reservation(conn, slot, owner, pet, idempotency_key="world-hold-0001")
    booking = await make_booking(
        conn, slot, owner, pet,
        reservation_id=reservation["reservation_id"], status="confirmed", payment_status="paid",
    )
    payment = await make_payment(
        conn, booking,
        status="completed", paid_at=datetime.now(UTC), provider_payment_id="mid-0001", idempotency_key="idem-0001",
    )
    await conn.execute(
        "UPDATE bookings SET payment_id = $1 WHERE booking_id = $2", payment["payment_id"], booking["booking_id"]
    )
    history = await make_history(conn, booking)
    unpaid_booking = await make_booking(conn, open_slot, owner, pet)
    other_clinic = await make_clinic(conn)
    other_owner = await make_user(conn)
    return World(
        conn=conn, clinic=clinic, service=service, second_service=second_service, staff=staff, owner=owner,
        pet=pet, slot=slot, open_slot=open_slot, free_start=local_start(clinic, hour=14),
        reservation=reservation, booking=booking, payment=payment, history=history,
        unpaid_booking=unpaid_booking, other_clinic=other_clinic,
        other_service=await make_service(conn, other_clinic), other_staff=await make_staff(conn, other_clinic),
        other_owner=other_owner, other_pet=await make_pet(conn, other_owner),
        manager=await make_user(conn, role="manager"),
    )


@pytest.fixture(scope="module")
async def module_world(module_conn: asyncpg.Connection) -> AsyncIterator[World]:
    """The valid rows, written once inside a transaction that is rolled back after the module."""
    transaction = module_conn.transaction()
    await transaction.start()
    try:
        yield await build_world(module_conn)
    finally:
        await transaction.rollback()


@pytest.fixture
async def world(module_world: World) -> AsyncIterator[World]:
    """The valid rows; whatever the test writes or drops is rolled back (a savepoint) after it."""
    savepoint = module_world.conn.transaction()
    await savepoint.start()
    try:
        yield module_world
    finally:
        await savepoint.rollback()


# ---------------------------------------------------------------------------------------------- helpers


async def row_count(conn: asyncpg.Connection, table: str) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM {table}")


async def rule_named_by(conn: asyncpg.Connection, error: asyncpg.PostgresError) -> str:
    """The schema rule an error names.

    On a partitioned table PostgreSQL names the partition's copy of a unique or foreign key
    (``slots_202612_pkey``, ``fk_bookings_slot_3``); following ``conparentid`` leads to the rule as
    declared. Names that are no constraint (a unique index, a rule raised by a trigger) are the rule itself.
    """
    roots = await conn.fetch(
        """
        WITH RECURSIVE chain AS (
            SELECT oid, conname, conparentid FROM pg_constraint
            WHERE conname = $1 AND connamespace = 'public'::regnamespace
            UNION ALL
            SELECT parent.oid, parent.conname, parent.conparentid
            FROM pg_constraint parent JOIN chain ON parent.oid = chain.conparentid
        )
        SELECT DISTINCT conname FROM chain WHERE conparentid = 0
        """,
        error.constraint_name,
    )
    assert len(roots) <= 1, (error.constraint_name, roots)
    return roots[0]["conname"] if roots else error.constraint_name


async def assert_refused(
    conn: asyncpg.Connection,
    table: str,
    error: type[asyncpg.PostgresError],
    rule: str,
    statement: Callable[[], Awaitable[Any]],
) -> asyncpg.PostgresError:
    """Run ``statement`` in a savepoint; it must fail with ``error`` naming ``rule`` and leave ``table`` as it was."""
    before = await row_count(conn, table)
    with pytest.raises(error) as caught:
        async with conn.transaction():
            await statement()
    assert await rule_named_by(conn, caught.value) == rule, (caught.value.constraint_name, str(caught.value))
    assert await row_count(conn, table) == before
    return caught.value


async def drop_rules(conn: asyncpg.Connection, rules: tuple[str, ...]) -> None:
    """Drop rules for the rest of the test's transaction (rolled back afterwards)."""
    for rule in rules:
        table = await conn.fetchval(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE conname = $1 AND conislocal AND conparentid = 0",
            rule,
        )
        await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {rule}")


def resolve(overrides: dict[str, Any], world: World) -> dict[str, Any]:
    """Overrides may be values or functions of the world (to reuse another row's id, say)."""
    return {column: value(world) if callable(value) else value for column, value in overrides.items()}


def case(
    table: str,
    rule: str,
    error: type[asyncpg.PostgresError],
    overrides: dict[str, Any],
    why: str = "",
    also_breaks: tuple[str, ...] = (),
):
    """One row of a case table: insert a valid ``table`` row with ``overrides``; ``rule`` must refuse it.

    ``also_breaks``: rules that such a row cannot help breaking too (a missing user is also no owner of
    the pet). The case drops them first, so that it shows ``rule`` refusing the row on its own, whatever
    order PostgreSQL checks the rules in.
    """
    case_id = f"{table}-{rule}" + (f"-{why}" if why else "")
    return pytest.param(table, rule, error, overrides, also_breaks, id=case_id)


# How to insert one valid row of each table; overrides change columns.
MAKERS: dict[str, Callable[[World, dict[str, Any]], Awaitable[dict]]] = {
    "clinics": lambda w, o: make_clinic(w.conn, **o),
    "services": lambda w, o: make_service(w.conn, w.clinic, **o),
    "staff": lambda w, o: make_staff(w.conn, w.clinic, **o),
    "users": lambda w, o: make_user(w.conn, **o),
    "pets": lambda w, o: make_pet(w.conn, w.owner, **o),
    # A new slot at 14:00 with the world's staff member: free, so only the override can conflict.
    "slots": lambda w, o: make_slot(w.conn, w.clinic, w.service, w.staff, start=w.free_start, **o),
    "reservations": lambda w, o: make_reservation(w.conn, w.slot, w.owner, w.pet, **o),
    "bookings": lambda w, o: make_booking(w.conn, w.slot, w.owner, w.pet, **o),
    # Payments go to the unpaid booking, so that a settled one does not also meet the world's payment.
    "payment_records": lambda w, o: make_payment(w.conn, w.unpaid_booking, **o),
    "booking_history": lambda w, o: make_history(w.conn, w.booking, **o),
}

NOW = datetime.now(UTC)
A_WHILE_AGO = NOW - timedelta(hours=1)


def missing_id(_world: World) -> uuid.UUID:
    return uuid.uuid4()


def same_prefix_as_the_clinic(world: World) -> uuid.UUID:
    return uuid.UUID(bytes=world.clinic["clinic_id"].bytes[:6] + uuid.uuid4().bytes[6:])


def id_of_the_other_clinic(world: World) -> uuid.UUID:
    """An id in the app's form (web/core/shard_keys.py) that names the other clinic."""
    return new_id(world.other_clinic["clinic_id"], NOW.date())


# ------------------------------------------------------------------------------------ the case tables

REFERENCE_TABLE_CASES = [
    # clinics
    case("clinics", "clinics_pkey", UniqueViolationError, {"clinic_id": lambda w: w.clinic["clinic_id"]}),
    case("clinics", "clinics_name_not_blank", CheckViolationError, {"name": "   "}),
    case("clinics", "clinics_name_key", UniqueViolationError, {"name": lambda w: w.clinic["name"].upper()},
         "same name in other case"),
    case("clinics", "clinics_timezone_valid", CheckViolationError, {"timezone": "Asia/Atlantis"}, "unknown zone"),
    case("clinics", "clinics_timezone_valid", CheckViolationError, {"timezone": "Jakarta"}, "city without region"),
    # PostgreSQL's AT TIME ZONE reads these as POSIX specifications, where 'UTC+7' and '+07' are UTC-7: a
    # clinic meant to be in WIB would be 14 hours off, and Python's zoneinfo refuses both.
    case("clinics", "clinics_timezone_valid", CheckViolationError, {"timezone": "UTC+7"}, "POSIX offset UTC+7"),
    case("clinics", "clinics_timezone_valid", CheckViolationError, {"timezone": "+07"}, "bare offset"),
    case("clinics", "clinics_timezone_valid", CheckViolationError, {"timezone": "asia/jakarta"}, "wrong letter case"),
    case("clinics", "clinics_min_booking_notice_check", CheckViolationError, {"min_booking_notice_minutes": -1}),
    case("clinics", "clinics_refund_deadline_check", CheckViolationError, {"refund_deadline_hours": -1}),
    # Ids name their clinic by the clinic id's first 48 bits: two clinics never share them.
    case("clinics", "clinics_id_prefix_key", UniqueViolationError, {"clinic_id": same_prefix_as_the_clinic}),
    # services
    # Each duplicate primary key goes to another clinic (owner), so that the unique (id, clinic) key that
    # composite foreign keys point at is not broken as well.
    case("services", "services_pkey", UniqueViolationError,
         {"service_id": lambda w: w.service["service_id"], "clinic_id": lambda w: w.other_clinic["clinic_id"]}),
    case("services", "services_clinic_id_fkey", ForeignKeyViolationError, {"clinic_id": missing_id}),
    case("services", "services_name_not_blank", CheckViolationError, {"name": ""}),
    case("services", "services_clinic_name_key", UniqueViolationError, {"name": lambda w: w.service["name"].lower()},
         "same name in other case in one clinic"),
    case("services", "services_duration_check", CheckViolationError, {"duration_minutes": 4}, "too short"),
    case("services", "services_duration_check", CheckViolationError, {"duration_minutes": 721}, "too long"),
    case("services", "services_price_check", CheckViolationError, {"price": Decimal("-1")}),
    case("services", "services_currency_check", CheckViolationError, {"currency": "idr"}, "lower case"),
    case("services", "services_currency_check", CheckViolationError, {"currency": "RP"}, "two letters"),
    # staff
    case("staff", "staff_pkey", UniqueViolationError,
         {"staff_id": lambda w: w.staff["staff_id"], "clinic_id": lambda w: w.other_clinic["clinic_id"]}),
    case("staff", "staff_clinic_id_fkey", ForeignKeyViolationError, {"clinic_id": missing_id}),
    case("staff", "staff_name_not_blank", CheckViolationError, {"name": " "}),
    case("staff", "staff_role_check", CheckViolationError, {"role": "surgeon"}),
    # users
    case("users", "users_pkey", UniqueViolationError, {"user_id": lambda w: w.owner["user_id"]}),
    case("users", "users_email_key", UniqueViolationError, {"email": lambda w: w.owner["email"].upper()},
         "same email in other case"),
    case("users", "users_email_check", CheckViolationError, {"email": "no-at-sign.example.test"}, "no at sign"),
    case("users", "users_email_check", CheckViolationError, {"email": "a b@example.test"}, "space"),
    case("users", "users_name_not_blank", CheckViolationError, {"name": "  "}),
    case("users", "users_role_check", CheckViolationError, {"role": "admin"}),
    case("users", "users_clinic_matches_role", CheckViolationError, {"role": "receptionist"},
         "receptionist without clinic"),
    case("users", "users_clinic_matches_role", CheckViolationError, {"clinic_id": lambda w: w.clinic["clinic_id"]},
         "owner with clinic"),
    case("users", "users_clinic_id_fkey", ForeignKeyViolationError, {"role": "manager", "clinic_id": missing_id},
         "manager of a missing clinic"),
    # pets
    case("pets", "pets_pkey", UniqueViolationError,
         {"pet_id": lambda w: w.pet["pet_id"], "owner_id": lambda w: w.other_owner["user_id"]}),
    case("pets", "pets_owner_id_fkey", ForeignKeyViolationError, {"owner_id": missing_id}),
    case("pets", "pets_name_not_blank", CheckViolationError, {"name": ""}),
    case("pets", "pets_species_check", CheckViolationError, {"species": "dragon"}),
    case("pets", "pets_birth_date_check", CheckViolationError, {"birth_date": date(1949, 12, 31)}),
]

SLOT_CASES = [
    # Another service, so that slots_slot_service_key (slot_id, date, service_id) is not broken too.
    case("slots", "slots_pkey", UniqueViolationError,
         {"slot_id": lambda w: w.slot["slot_id"], "service_id": lambda w: w.second_service["service_id"]},
         "same id on the same day"),
    case("slots", "slots_status_check", CheckViolationError, {"status": "open"}),
    case("slots", "slots_capacity_check", CheckViolationError, {"capacity": 0, "remaining": 0}),
    case("slots", "slots_remaining_check", CheckViolationError, {"remaining": -1}, "negative"),
    case("slots", "slots_remaining_check", CheckViolationError, {"capacity": 2, "remaining": 3},
         "more than capacity"),
    case("slots", "slots_time_order_check", CheckViolationError, {"end_time": lambda w: w.free_start},
         "ends when it starts"),
    case("slots", "slots_time_order_check", CheckViolationError,
         {"end_time": lambda w: w.free_start - timedelta(minutes=30)}, "ends before it starts"),
    case("slots", "slots_price_check", CheckViolationError, {"price": Decimal("-0.01")}),
    case("slots", "slots_version_check", CheckViolationError, {"version": 0}),
    case("slots", "slots_booked_means_full", CheckViolationError, {"status": "booked", "remaining": 1},
         "booked with a place left"),
    # A second unstaffed slot at the open slot's start: NULL staff ids count as equal (NULLS NOT DISTINCT).
    case("slots", "slots_unique_start", UniqueViolationError,
         {"staff_id": None, "start_time": lambda w: w.open_slot["start_time"],
          "end_time": lambda w: w.open_slot["end_time"]}, "same start without staff"),
    case("slots", "slots_service_in_clinic_fkey", ForeignKeyViolationError,
         {"service_id": lambda w: w.other_service["service_id"]}, "service of another clinic"),
    case("slots", "slots_staff_in_clinic_fkey", ForeignKeyViolationError,
         {"staff_id": lambda w: w.other_staff["staff_id"]}, "staff of another clinic"),
    case("slots", "slots_created_by_fkey", ForeignKeyViolationError, {"created_by": missing_id}),
    # The trigger lets a row with a missing clinic through to the foreign keys.
    case("slots", "slots_clinic_id_fkey", ForeignKeyViolationError, {"clinic_id": missing_id}, "missing clinic",
         also_breaks=("slots_service_in_clinic_fkey", "slots_staff_in_clinic_fkey")),
    case("slots", "slots_id_names_clinic_and_day", CheckViolationError,
         {"slot_id": lambda w: new_id(w.other_clinic["clinic_id"], w.free_start.astimezone(
             ZoneInfo(w.clinic["timezone"])).date())}, "id names another clinic"),
    case("slots", "slots_id_names_clinic_and_day", CheckViolationError,
         {"slot_id": lambda w: new_id(w.clinic["clinic_id"], w.free_start.astimezone(
             ZoneInfo(w.clinic["timezone"])).date() + timedelta(days=1))}, "id names another day"),
    case("slots", "slots_date_is_local_day", CheckViolationError,
         {"date": lambda w: w.slot["date"] + timedelta(days=1)}, "date is the next day"),
]

RESERVATION_CASES = [
    case("reservations", "reservations_pkey", UniqueViolationError,
         {"reservation_id": lambda w: w.reservation["reservation_id"]}),
    case("reservations", "reservations_lock_token_key", UniqueViolationError,
         {"lock_token": lambda w: w.reservation["lock_token"]}, "token already used"),
    case("reservations", "reservations_status_check", CheckViolationError, {"status": "held"}),
    case("reservations", "reservations_id_names_clinic_and_day", CheckViolationError,
         {"reservation_id": lambda w: new_id(w.other_clinic["clinic_id"], w.slot["date"])}, "id names another clinic"),
    case("reservations", "reservations_id_names_clinic_and_day", CheckViolationError,
         {"reservation_id": lambda w: new_id(w.clinic["clinic_id"], w.slot["date"] + timedelta(days=1))},
         "id names another day than the slot's"),
    case("reservations", "reservations_owner_idempotency_key_idx", UniqueViolationError,
         {"idempotency_key": "world-hold-0001"}, "the owner's key already used"),
    case("reservations", "reservations_idempotency_key_format", CheckViolationError,
         {"idempotency_key": "short"}, "7 characters"),
    case("reservations", "reservations_expiry_check", CheckViolationError,
         {"created_at": NOW, "expires_at": NOW}, "expires when made"),
    case("reservations", "reservations_expiry_check", CheckViolationError,
         {"created_at": NOW, "expires_at": A_WHILE_AGO}, "expires before made"),
    case("reservations", "reservations_lock_token_check", CheckViolationError, {"lock_token": "x" * 31},
         "31 characters"),
    case("reservations", "reservations_pet_of_user_fkey", ForeignKeyViolationError,
         {"pet_id": lambda w: w.other_pet["pet_id"]}, "pet of another user"),
    case("reservations", "reservations_slot_id_fkey", ForeignKeyViolationError, {"slot_id": missing_id},
         "missing slot"),
    # (The hold's id then names another day than its slot date too.)
    case("reservations", "reservations_slot_id_fkey", ForeignKeyViolationError,
         {"slot_date": lambda w: w.slot["date"] + timedelta(days=1)}, "wrong slot date",
         also_breaks=("reservations_id_names_clinic_and_day",)),
    case("reservations", "reservations_slot_id_fkey", ForeignKeyViolationError,
         {"service_id": lambda w: w.second_service["service_id"]}, "service is not the slot's"),
    case("reservations", "reservations_user_id_fkey", ForeignKeyViolationError, {"user_id": missing_id},
         "missing user", also_breaks=("reservations_pet_of_user_fkey",)),
    case("reservations", "reservations_service_id_fkey", ForeignKeyViolationError, {"service_id": missing_id},
         "missing service", also_breaks=("reservations_slot_id_fkey",)),
]

BOOKING_CASES = [
    case("bookings", "bookings_pkey", UniqueViolationError,
         {"booking_id": lambda w: w.booking["booking_id"], "created_at": lambda w: w.booking["created_at"]}),
    # A status outside the list fits no branch of check_payment_status either.
    case("bookings", "bookings_status_check", CheckViolationError, {"status": "done"},
         also_breaks=("check_payment_status",)),
    case("bookings", "bookings_payment_status_check", CheckViolationError,
         {"status": "in_progress", "payment_status": "waived"}),
    case("bookings", "bookings_booking_source_check", CheckViolationError, {"booking_source": "kiosk"}),
    # Codes are read aloud and typed: no 0/O, 1/I, no lowercase, exactly 8 characters.
    case("bookings", "bookings_booking_code_check", CheckViolationError, {"booking_code": "K7M2-9QX"}),
    case("bookings", "bookings_booking_code_check", CheckViolationError, {"booking_code": "O0I1ABCD"}),
    case("bookings", "bookings_currency_check", CheckViolationError, {"currency": "Rp"}),
    case("bookings", "bookings_version_check", CheckViolationError, {"version": 0}),
    case("bookings", "bookings_id_names_clinic_and_day", CheckViolationError,
         {"booking_id": id_of_the_other_clinic}, "id names another clinic"),
    # The id's day may be a day off the creation time's UTC day (the app makes the id), not more.
    case("bookings", "bookings_id_names_clinic_and_day", CheckViolationError,
         {"booking_id": lambda w: new_id(w.clinic["clinic_id"], NOW.date() + timedelta(days=2)), "created_at": NOW},
         "id names a day two days off"),
    # Money.
    case("bookings", "bookings_final_amount_check", CheckViolationError, {"final_amount": PRICE - 1},
         "final is not total minus discount"),
    case("bookings", "bookings_amounts_check", CheckViolationError,
         {"total_amount": Decimal("-1"), "final_amount": Decimal("-1")}, "negative total",
         also_breaks=("bookings_refund_check",)),  # refunded_amount 0 exceeds a negative final amount
    case("bookings", "bookings_amounts_check", CheckViolationError,
         {"discount_amount": Decimal("-10"), "final_amount": PRICE + 10}, "negative discount"),
    case("bookings", "bookings_amounts_check", CheckViolationError,
         {"discount_amount": PRICE + 10, "final_amount": Decimal("-10")}, "discount above total",
         also_breaks=("bookings_refund_check",)),
    # check_payment_status: the pairs the design's flows never produce.
    case("bookings", "check_payment_status", CheckViolationError, {"status": "confirmed", "payment_status": "pending"},
         "confirmed unpaid"),
    case("bookings", "check_payment_status", CheckViolationError,
         {"status": "pending_payment", "payment_status": "paid"}, "pending_payment paid"),
    case("bookings", "check_payment_status", CheckViolationError,
         {"status": "cancelled", "payment_status": "pending", "cancelled_at": NOW}, "cancelled still pending"),
    case("bookings", "check_payment_status", CheckViolationError,
         {"status": "rescheduled", "payment_status": "failed"}, "rescheduled failed"),
    # bookings_refund_check.
    case("bookings", "bookings_refund_check", CheckViolationError,
         {"status": "completed", "payment_status": "paid", "completed_at": NOW, "refunded_amount": Decimal("-1")},
         "negative refund"),
    case("bookings", "bookings_refund_check", CheckViolationError,
         {"status": "cancelled", "payment_status": "refunded", "cancelled_at": NOW, "refunded_amount": PRICE + 1},
         "refund above final amount"),
    case("bookings", "bookings_refund_check", CheckViolationError,
         {"status": "cancelled", "payment_status": "refunded", "cancelled_at": NOW, "refunded_amount": PRICE - 1},
         "refunded but not all of it"),
    case("bookings", "bookings_refund_check", CheckViolationError,
         {"status": "cancelled", "payment_status": "partially_refunded", "cancelled_at": NOW},
         "partially refunded nothing"),
    case("bookings", "bookings_refund_check", CheckViolationError,
         {"status": "cancelled", "payment_status": "partially_refunded", "cancelled_at": NOW,
          "refunded_amount": PRICE}, "partially refunded everything"),
    case("bookings", "bookings_refund_check", CheckViolationError,
         {"status": "cancelled", "payment_status": "paid", "cancelled_at": NOW, "refunded_amount": Decimal("1000")},
         "paid with money returned"),
    # Timestamps that go with a status.
    case("bookings", "bookings_cancelled_at_check", CheckViolationError,
         {"status": "cancelled", "payment_status": "failed"}, "cancelled without cancelled_at"),
    case("bookings", "bookings_cancelled_at_check", CheckViolationError, {"cancelled_at": NOW},
         "cancelled_at on a live booking"),
    case("bookings", "bookings_cancellation_reason_check", CheckViolationError,
         {"cancellation_reason": "customer_request"}, "reason on a live booking"),
    case("bookings", "bookings_completed_at_check", CheckViolationError,
         {"status": "completed", "payment_status": "paid"}, "completed without completed_at"),
    case("bookings", "bookings_completed_at_check", CheckViolationError, {"completed_at": NOW},
         "completed_at on a pending booking"),
    case("bookings", "bookings_rescheduled_from_check", CheckViolationError,
         {"rescheduled_from_booking_id": lambda w: w.booking["booking_id"]}, "id without created_at"),
    # Foreign keys.
    case("bookings", "bookings_reservation_id_fkey", ForeignKeyViolationError, {"reservation_id": missing_id}),
    case("bookings", "bookings_pet_of_user_fkey", ForeignKeyViolationError,
         {"pet_id": lambda w: w.other_pet["pet_id"]}, "pet of another user"),
    # The booking's clinic is another one (its staff left open, so that only the service key is broken).
    case("bookings", "bookings_service_in_clinic_fkey", ForeignKeyViolationError,
         {"clinic_id": lambda w: w.other_clinic["clinic_id"], "staff_id": None}, "service of another clinic"),
    case("bookings", "bookings_staff_in_clinic_fkey", ForeignKeyViolationError,
         {"staff_id": lambda w: w.other_staff["staff_id"]}, "staff of another clinic"),
    case("bookings", "fk_bookings_slot", ForeignKeyViolationError, {"slot_id": missing_id}, "missing slot"),
    case("bookings", "fk_bookings_slot", ForeignKeyViolationError,
         {"slot_date": lambda w: w.slot["date"] + timedelta(days=1)}, "wrong slot date"),
    case("bookings", "fk_bookings_slot", ForeignKeyViolationError,
         {"service_id": lambda w: w.second_service["service_id"]}, "service is not the slot's"),
    case("bookings", "bookings_rescheduled_from_fkey", ForeignKeyViolationError,
         {"rescheduled_from_booking_id": missing_id, "rescheduled_from_created_at": NOW}, "missing booking"),
    case("bookings", "bookings_rescheduled_from_fkey", ForeignKeyViolationError,
         {"rescheduled_from_booking_id": lambda w: w.booking["booking_id"],
          "rescheduled_from_created_at": lambda w: w.booking["created_at"] + timedelta(seconds=1)},
         "wrong created_at"),
    case("bookings", "bookings_payment_id_fkey", ForeignKeyViolationError, {"payment_id": missing_id}),
    case("bookings", "bookings_user_id_fkey", ForeignKeyViolationError, {"user_id": missing_id}, "missing user",
         also_breaks=("bookings_pet_of_user_fkey",)),
    case("bookings", "bookings_clinic_id_fkey", ForeignKeyViolationError, {"clinic_id": missing_id},
         "missing clinic", also_breaks=("bookings_service_in_clinic_fkey", "bookings_staff_in_clinic_fkey")),
]

SETTLED = {"paid_at": NOW}

PAYMENT_CASES = [
    case("payment_records", "payment_records_pkey", UniqueViolationError,
         {"payment_id": lambda w: w.payment["payment_id"]}),
    case("payment_records", "payment_records_idempotency_key_key", UniqueViolationError,
         {"idempotency_key": lambda w: w.payment["idempotency_key"]}, "key already used"),
    case("payment_records", "payment_records_provider_payment_key", UniqueViolationError,
         {"provider_payment_id": lambda w: w.payment["provider_payment_id"]}, "gateway id already recorded"),
    # A second settled payment for the world's paid booking: money would be taken twice.
    case("payment_records", "payment_records_one_settled_per_booking", UniqueViolationError,
         {"booking_id": lambda w: w.booking["booking_id"], "booking_created_at": lambda w: w.booking["created_at"],
          "status": "completed", **SETTLED}, "second completed payment"),
    case("payment_records", "payment_records_one_settled_per_booking", UniqueViolationError,
         {"booking_id": lambda w: w.booking["booking_id"], "booking_created_at": lambda w: w.booking["created_at"],
          "status": "refunded", "refund_amount": PRICE, "refunded_at": NOW, **SETTLED}, "second refunded payment"),
    case("payment_records", "payment_records_status_check", CheckViolationError, {"status": "paid"}),
    case("payment_records", "payment_records_id_names_clinic", CheckViolationError,
         {"payment_id": id_of_the_other_clinic}, "id names another clinic"),
    case("payment_records", "payment_records_provider_check", CheckViolationError, {"payment_provider": "paypal"}),
    case("payment_records", "payment_records_amount_check", CheckViolationError, {"amount": Decimal("-1")}),
    case("payment_records", "payment_records_currency_check", CheckViolationError, {"currency": "idr"}),
    case("payment_records", "payment_records_method_not_blank", CheckViolationError, {"payment_method": " "}),
    case("payment_records", "payment_records_fee_check", CheckViolationError, {"transaction_fee": Decimal("-1")}),
    case("payment_records", "payment_records_paid_at_check", CheckViolationError, {"status": "completed"},
         "completed without paid_at"),
    # payment_records_refund_check.
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "partially_refunded", "refund_amount": Decimal("0"), "refunded_at": NOW, **SETTLED},
         "zero refund"),
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "refunded", "refund_amount": PRICE + 1, "refunded_at": NOW, **SETTLED}, "refund above amount"),
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "refunded", **SETTLED}, "refunded without refund_amount"),
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "completed", "refund_amount": Decimal("1000"), "refunded_at": NOW, **SETTLED},
         "refund_amount on a completed payment"),
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "partially_refunded", "refund_amount": Decimal("1000"), **SETTLED}, "refund without refunded_at"),
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "completed", "refunded_at": NOW, **SETTLED}, "refunded_at without refund"),
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "refunded", "refund_amount": PRICE - 1, "refunded_at": NOW, **SETTLED},
         "refunded but not all of it"),
    case("payment_records", "payment_records_refund_check", CheckViolationError,
         {"status": "partially_refunded", "refund_amount": PRICE, "refunded_at": NOW, **SETTLED},
         "partially refunded everything"),
    case("payment_records", "payment_records_booking_id_fkey", ForeignKeyViolationError,
         {"booking_id": missing_id}, "missing booking"),
    case("payment_records", "payment_records_booking_id_fkey", ForeignKeyViolationError,
         {"booking_created_at": lambda w: w.unpaid_booking["created_at"] + timedelta(seconds=1)},
         "wrong booking_created_at"),
]

HISTORY_CASES = [
    case("booking_history", "booking_history_id_names_clinic", CheckViolationError,
         {"history_id": id_of_the_other_clinic}, "id names another clinic"),
    case("booking_history", "booking_history_pkey", UniqueViolationError,
         {"history_id": lambda w: w.history["history_id"]}),
    case("booking_history", "booking_history_status_changed", CheckViolationError,
         {"previous_status": "confirmed", "new_status": "confirmed"}),
    case("booking_history", "booking_history_booking_id_fkey", ForeignKeyViolationError,
         {"booking_id": missing_id}, "missing booking"),
    case("booking_history", "booking_history_booking_id_fkey", ForeignKeyViolationError,
         {"booking_created_at": lambda w: w.booking["created_at"] - timedelta(seconds=1)}, "wrong booking_created_at"),
    case("booking_history", "booking_history_changed_by_fkey", ForeignKeyViolationError, {"changed_by": missing_id}),
]

ALL_CASES = REFERENCE_TABLE_CASES + SLOT_CASES + RESERVATION_CASES + BOOKING_CASES + PAYMENT_CASES + HISTORY_CASES


@pytest.mark.parametrize(("table", "rule", "error", "overrides", "also_breaks"), ALL_CASES)
async def test_row_breaking_a_rule_is_refused_by_that_rule(
    world: World,
    table: str,
    rule: str,
    error: type[asyncpg.PostgresError],
    overrides: dict[str, Any],
    also_breaks: tuple[str, ...],
) -> None:
    values = resolve(overrides, world)
    await drop_rules(world.conn, also_breaks)
    await assert_refused(world.conn, table, error, rule, lambda: MAKERS[table](world, values))


# Rows at the edge of a rule that the rule must let through (the twin of a refusal above, or a state
# the design's own flows produce).
ACCEPTED = [
    pytest.param("clinics", {"timezone": "Asia/Jayapura"}, id="clinics-WIT zone"),
    pytest.param("clinics", {"timezone": "UTC"}, id="clinics-UTC"),
    pytest.param("clinics", {"timezone": "Etc/GMT-7"}, id="clinics-fixed offset zone of the zone database"),
    pytest.param("services", {"name": lambda w: w.other_service["name"]}, id="services-same name in another clinic"),
    pytest.param("users", {"role": "manager"}, id="users-manager of all clinics"),
    pytest.param("users", {"role": "manager", "clinic_id": lambda w: w.clinic["clinic_id"]},
                 id="users-manager of one clinic"),
    pytest.param("users", {"role": "receptionist", "clinic_id": lambda w: w.clinic["clinic_id"]},
                 id="users-receptionist with clinic"),
    pytest.param("pets", {"birth_date": date(1950, 1, 1)}, id="pets-oldest birth date"),
    pytest.param("slots", {"status": "booked", "remaining": 0}, id="slots-booked and full"),
    pytest.param("slots", {"capacity": 3, "remaining": 3}, id="slots-remaining equals capacity"),
    pytest.param("reservations", {"lock_token": "x" * 32}, id="reservations-32 character token"),
    # The design's 4.2 cancellation with its standard 90% refund.
    pytest.param("bookings", {"status": "cancelled", "payment_status": "partially_refunded", "cancelled_at": NOW,
                              "cancellation_reason": "customer_request", "refunded_amount": PRICE * Decimal("0.9")},
                 id="bookings-cancelled partially refunded"),
    pytest.param("bookings", {"status": "cancelled", "payment_status": "refunded", "cancelled_at": NOW,
                              "refunded_amount": PRICE}, id="bookings-cancelled refunded in full"),
    pytest.param("bookings", {"status": "cancelled", "payment_status": "paid", "cancelled_at": NOW},
                 id="bookings-cancelled after the refund deadline"),
    pytest.param("bookings", {"status": "rescheduled", "payment_status": "paid"}, id="bookings-rescheduled paid"),
    pytest.param("bookings", {"status": "rescheduled", "payment_status": "pending"},
                 id="bookings-rescheduled pending"),
    pytest.param("bookings", {"status": "completed", "payment_status": "paid", "completed_at": NOW},
                 id="bookings-completed"),
    pytest.param("bookings", {"rescheduled_from_booking_id": lambda w: w.booking["booking_id"],
                              "rescheduled_from_created_at": lambda w: w.booking["created_at"]},
                 id="bookings-rescheduled from an existing booking"),
    pytest.param("payment_records", {"status": "failed"}, id="payments-a failed attempt"),
    pytest.param("payment_records", {"booking_id": lambda w: w.booking["booking_id"],
                                     "booking_created_at": lambda w: w.booking["created_at"], "status": "failed"},
                 id="payments-a failed attempt beside the settled payment"),
    pytest.param("payment_records", {"provider_payment_id": lambda w: w.payment["provider_payment_id"],
                                     "payment_provider": "xendit"},
                 id="payments-same gateway id at another gateway"),
    pytest.param("payment_records", {"status": "refunded", "refund_amount": PRICE, "refunded_at": NOW, **SETTLED},
                 id="payments-refunded in full"),
    pytest.param("payment_records", {"status": "partially_refunded", "refund_amount": PRICE * Decimal("0.9"),
                                     "refunded_at": NOW, **SETTLED}, id="payments-refunded 90 percent"),
]


@pytest.mark.parametrize(("table", "overrides"), ACCEPTED)
async def test_row_at_the_edge_of_a_rule_is_accepted(world: World, table: str, overrides: dict[str, Any]) -> None:
    before = await row_count(world.conn, table)
    await MAKERS[table](world, resolve(overrides, world))
    assert await row_count(world.conn, table) == before + 1


async def test_two_payments_without_gateway_id_do_not_collide(world: World) -> None:
    # The gateway-id index is partial (provider_payment_id IS NOT NULL): manual payments have no id.
    await make_payment(world.conn, world.unpaid_booking, payment_provider="manual", status="failed")
    await make_payment(world.conn, world.unpaid_booking, payment_provider="manual", status="failed")
    assert await world.conn.fetchval(
        "SELECT count(*) FROM payment_records WHERE booking_id = $1", world.unpaid_booking["booking_id"]
    ) == 2


# -------------------------------------------------------------------------------------------- NOT NULL

NOT_NULL_CASES = [
    # The design's mistake: with a NULL discount, final_amount = total_amount - NULL is NULL, which a CHECK
    # accepts, so any final_amount would have passed bookings_final_amount_check.
    pytest.param("bookings", "discount_amount", {"discount_amount": None, "final_amount": Decimal("1")},
                 id="bookings-discount_amount NULL with any final amount"),
    pytest.param("bookings", "refunded_amount", {"refunded_amount": None}, id="bookings-refunded_amount"),
    pytest.param("bookings", "booking_source", {"booking_source": None}, id="bookings-booking_source"),
    pytest.param("bookings", "final_amount", {"final_amount": None}, id="bookings-final_amount"),
    pytest.param("payment_records", "amount", {"amount": None}, id="payments-amount"),
]


@pytest.mark.parametrize(("table", "column", "overrides"), NOT_NULL_CASES)
async def test_null_in_a_required_column_is_refused(
    world: World, table: str, column: str, overrides: dict[str, Any]
) -> None:
    before = await row_count(world.conn, table)
    with pytest.raises(NotNullViolationError) as caught:
        async with world.conn.transaction():
            await MAKERS[table](world, overrides)
    # A NOT NULL violation names its column, not a constraint (also on 18, which catalogues NOT NULL).
    assert caught.value.column_name == column
    assert await row_count(world.conn, table) == before


# ------------------------------------------------------------------------------- the slot trigger rules


async def test_slot_date_must_be_the_clinic_local_day_of_its_start(world: World) -> None:
    # Asia/Jayapura is UTC+9: 23:30 UTC is 08:30 on the next local day.
    clinic = await make_clinic(world.conn, timezone="Asia/Jayapura")
    service = await make_service(world.conn, clinic)
    utc_day = datetime.now(UTC).date() + timedelta(days=7)
    start = datetime(utc_day.year, utc_day.month, utc_day.day, 23, 30, tzinfo=UTC)

    error = await assert_refused(
        world.conn, "slots", CheckViolationError, "slots_date_is_local_day",
        lambda: make_slot(world.conn, clinic, service, start=start, date=utc_day),
    )
    assert error.sqlstate == "23514"  # raised by the trigger as check_violation

    accepted = await make_slot(world.conn, clinic, service, start=start, date=utc_day + timedelta(days=1))
    assert accepted["date"] == utc_day + timedelta(days=1)


async def test_slot_moved_to_another_local_day_without_its_date_is_refused(world: World) -> None:
    # The trigger also runs on UPDATE: moving start_time by a day must move date too.
    slot = world.open_slot
    await assert_refused(
        world.conn, "slots", CheckViolationError, "slots_date_is_local_day",
        lambda: world.conn.execute(
            "UPDATE slots SET start_time = start_time + interval '1 day', end_time = end_time + interval '1 day' "
            "WHERE slot_id = $1", slot["slot_id"],
        ),
    )
    assert await world.conn.fetchval("SELECT start_time FROM slots WHERE slot_id = $1", slot["slot_id"]) == (
        slot["start_time"]
    )


async def test_slot_crossing_local_midnight_is_refused(world: World) -> None:
    clinic = await make_clinic(world.conn, timezone="Asia/Jayapura")
    service = await make_service(world.conn, clinic)
    late = local_start(clinic, hour=23, minute=45)

    await assert_refused(
        world.conn, "slots", CheckViolationError, "slots_within_one_local_day",
        lambda: make_slot(world.conn, clinic, service, start=late, minutes=30),
    )

    # Ending exactly at local midnight stays within the day.
    last = await make_slot(world.conn, clinic, service, start=local_start(clinic, hour=23, minute=30), minutes=30)
    assert last["end_time"] == late + timedelta(minutes=15)


# --------------------------------------------------------------------------- staff no-overlap exclusion


def overlap_rule(slot: dict) -> str:
    return f"slots_{slot['date']:%Y%m}_no_staff_overlap"


@pytest.mark.parametrize(
    ("offset_minutes", "minutes"),
    [
        pytest.param(0, 30, id="same times"),
        pytest.param(15, 30, id="starts inside"),
        pytest.param(-15, 30, id="ends inside"),
        pytest.param(5, 10, id="contained"),
        pytest.param(-30, 90, id="contains"),
    ],
)
async def test_overlapping_slots_of_one_staff_member_are_refused(
    world: World, offset_minutes: int, minutes: int
) -> None:
    # Another service, so that slots_unique_start does not fire first on equal starts.
    start = world.slot["start_time"] + timedelta(minutes=offset_minutes)
    await assert_refused(
        world.conn, "slots", ExclusionViolationError, overlap_rule(world.slot),
        lambda: make_slot(world.conn, world.clinic, world.second_service, world.staff, start=start, minutes=minutes),
    )


async def test_slot_moved_onto_a_busy_staff_member_is_refused(world: World) -> None:
    # Another service, so that slots_unique_start does not fire first on the equal start.
    later = await make_slot(world.conn, world.clinic, world.second_service, world.staff, start=world.free_start)
    await assert_refused(
        world.conn, "slots", ExclusionViolationError, overlap_rule(world.slot),
        lambda: world.conn.execute(
            "UPDATE slots SET start_time = $1, end_time = $2 WHERE slot_id = $3",
            world.slot["start_time"], world.slot["end_time"], later["slot_id"],
        ),
    )


async def test_touching_slots_of_one_staff_member_are_accepted(world: World) -> None:
    # Ranges are half-open: a slot may start when the previous one ends.
    before = await make_slot(world.conn, world.clinic, world.service, world.staff,
                             start=world.slot["start_time"] - timedelta(minutes=30))
    after = await make_slot(world.conn, world.clinic, world.service, world.staff, start=world.slot["end_time"])
    assert before["end_time"] == world.slot["start_time"]
    assert after["start_time"] == world.slot["end_time"]


async def test_same_times_for_two_staff_members_are_accepted(world: World) -> None:
    colleague = await make_staff(world.conn, world.clinic)
    twin = await make_slot(world.conn, world.clinic, world.service, colleague, start=world.slot["start_time"])
    assert (twin["start_time"], twin["end_time"]) == (world.slot["start_time"], world.slot["end_time"])


async def test_slots_without_staff_never_conflict(world: World) -> None:
    # Overlapping the staffed slot and the unstaffed open slot, and each other; no staff, no exclusion.
    first = await make_slot(world.conn, world.clinic, world.service, None,
                            start=world.slot["start_time"] + timedelta(minutes=10), minutes=60)
    second = await make_slot(world.conn, world.clinic, world.service, None,
                             start=world.slot["start_time"] + timedelta(minutes=20), minutes=60)
    assert first["staff_id"] is None and second["staff_id"] is None


# ----------------------------------------------------------------------------------- ON DELETE behaviour


async def test_refused_slot_delete_keeps_the_reservations_it_would_have_cascaded_to(world: World) -> None:
    # The world's slot has a reservation (ON DELETE CASCADE) and a booking (fk_bookings_slot, NO ACTION):
    # the refusal undoes the cascade too.
    await assert_refused(
        world.conn, "slots", ForeignKeyViolationError, "fk_bookings_slot",
        lambda: world.conn.execute("DELETE FROM slots WHERE slot_id = $1", world.slot["slot_id"]),
    )
    assert await world.conn.fetchval(
        "SELECT count(*) FROM reservations WHERE slot_id = $1", world.slot["slot_id"]
    ) == 1


async def test_deleting_a_slot_deletes_its_reservations(world: World) -> None:
    # Two holds on a slot nobody booked.
    spare = await make_slot(world.conn, world.clinic, world.service, world.staff, start=world.free_start)
    await make_reservation(world.conn, spare, world.owner, world.pet)
    await make_reservation(world.conn, spare, world.other_owner, world.other_pet)

    await world.conn.execute("DELETE FROM slots WHERE slot_id = $1", spare["slot_id"])

    assert await world.conn.fetchval("SELECT count(*) FROM reservations WHERE slot_id = $1", spare["slot_id"]) == 0
    # The world's own reservation, on another slot, is untouched.
    assert await row_count(world.conn, "reservations") == 1


async def test_a_hold_a_booking_was_made_from_cannot_disappear(world: World) -> None:
    # The design unlinked the booking (ON DELETE SET NULL); with the clinic in the key that would null the
    # clinic too (and Citus refuses it), so the hold stays while a booking names it (migration 0021).
    spare = await make_slot(world.conn, world.clinic, world.service, world.staff, start=world.free_start)
    held = await make_reservation(world.conn, spare, world.owner, world.pet)
    booking = await make_booking(world.conn, world.open_slot, world.owner, world.pet,
                                 reservation_id=held["reservation_id"])

    await assert_refused(
        world.conn, "reservations", ForeignKeyViolationError, "bookings_reservation_id_fkey",
        lambda: world.conn.execute("DELETE FROM slots WHERE slot_id = $1", spare["slot_id"]),
    )
    assert await world.conn.fetchval(
        "SELECT reservation_id FROM bookings WHERE booking_id = $1", booking["booking_id"]) == held["reservation_id"]


async def test_a_payment_its_booking_names_cannot_be_deleted(world: World) -> None:
    await assert_refused(
        world.conn, "bookings", ForeignKeyViolationError, "bookings_payment_id_fkey",
        lambda: world.conn.execute("DELETE FROM payment_records WHERE payment_id = $1", world.payment["payment_id"]),
    )
    assert await world.conn.fetchval(
        "SELECT payment_id FROM bookings WHERE booking_id = $1", world.booking["booking_id"]
    ) == world.payment["payment_id"]


async def test_deleting_a_user_keeps_the_slots_and_history_they_wrote(world: World) -> None:
    manager = world.manager
    slot = await make_slot(world.conn, world.clinic, world.service, None, start=world.free_start,
                           created_by=manager["user_id"])
    entry = await make_history(world.conn, world.unpaid_booking, previous_status="pending_payment",
                               new_status="cancelled", changed_by=manager["user_id"])

    await world.conn.execute("DELETE FROM users WHERE user_id = $1", manager["user_id"])

    assert await world.conn.fetchval("SELECT created_by FROM slots WHERE slot_id = $1", slot["slot_id"]) is None
    assert await world.conn.fetchval(
        "SELECT changed_by FROM booking_history WHERE history_id = $1", entry["history_id"]
    ) is None


def delete_case(table: str, key: str, row: Callable[[World], dict], rule: str,
                error: type[asyncpg.PostgresError], prepare: Callable[[World], Awaitable[Any]] | None, why: str):
    """Delete ``row`` of ``table`` after ``prepare`` made one kind of row point at it; ``rule`` must refuse."""
    return pytest.param(table, key, row, rule, error, prepare, id=why)


# The default NO ACTION raises ForeignKeyViolationError. ON DELETE RESTRICT raises RestrictViolationError
# (SQLSTATE 23001) from PostgreSQL 18 on, ForeignKeyViolationError before.
RESTRICT = RestrictViolationError
DELETE_CASES = [
    # Money and audit trail outlive nothing they describe (the design cascaded these deletes).
    delete_case("bookings", "booking_id", lambda w: w.unpaid_booking, "payment_records_booking_id_fkey",
                RESTRICT, lambda w: make_payment(w.conn, w.unpaid_booking),
                "booking with a payment"),
    delete_case("bookings", "booking_id", lambda w: w.unpaid_booking, "booking_history_booking_id_fkey",
                RESTRICT,
                lambda w: make_history(w.conn, w.unpaid_booking, new_status="cancelled"),
                "booking with history"),
    delete_case("bookings", "booking_id", lambda w: w.unpaid_booking, "bookings_rescheduled_from_fkey",
                ForeignKeyViolationError,
                lambda w: make_booking(w.conn, w.open_slot, w.owner, w.pet,
                                       rescheduled_from_booking_id=w.unpaid_booking["booking_id"],
                                       rescheduled_from_created_at=w.unpaid_booking["created_at"]),
                "booking a reschedule came from"),
    delete_case("slots", "slot_id", lambda w: w.open_slot, "fk_bookings_slot", ForeignKeyViolationError, None,
                "slot with a booking"),
    delete_case("clinics", "clinic_id", lambda w: w.other_clinic, "services_clinic_id_fkey", RESTRICT,
                lambda w: w.conn.execute("DELETE FROM staff WHERE staff_id = $1", w.other_staff["staff_id"]),
                "clinic with a service"),
    delete_case("clinics", "clinic_id", lambda w: w.other_clinic, "staff_clinic_id_fkey", RESTRICT,
                lambda w: w.conn.execute("DELETE FROM services WHERE service_id = $1", w.other_service["service_id"]),
                "clinic with staff"),
    delete_case("users", "user_id", lambda w: w.other_owner, "pets_owner_id_fkey", RESTRICT, None,
                "owner with a pet"),
    delete_case("pets", "pet_id", lambda w: w.other_pet, "reservations_pet_of_user_fkey", ForeignKeyViolationError,
                lambda w: make_reservation(w.conn, w.slot, w.other_owner, w.other_pet), "pet with a reservation"),
    delete_case("pets", "pet_id", lambda w: w.other_pet, "bookings_pet_of_user_fkey", ForeignKeyViolationError,
                lambda w: make_booking(w.conn, w.open_slot, w.other_owner, w.other_pet), "pet with a booking"),
    delete_case("services", "service_id", lambda w: w.second_service, "slots_service_in_clinic_fkey",
                ForeignKeyViolationError,
                lambda w: make_slot(w.conn, w.clinic, w.second_service, None, start=w.free_start),
                "service with a slot"),
    delete_case("staff", "staff_id", lambda w: w.other_staff, "slots_staff_in_clinic_fkey", ForeignKeyViolationError,
                lambda w: make_slot(w.conn, w.other_clinic, w.other_service, w.other_staff,
                                    start=local_start(w.other_clinic, hour=9)),
                "staff member with a slot"),
]


@pytest.mark.parametrize(("table", "key", "row", "rule", "error", "prepare"), DELETE_CASES)
async def test_row_others_point_at_cannot_be_deleted(
    world: World,
    table: str,
    key: str,
    row: Callable[[World], dict],
    rule: str,
    error: type[asyncpg.PostgresError],
    prepare: Callable[[World], Awaitable[Any]] | None,
) -> None:
    if error is RESTRICT and world.conn.get_server_version().major < 18:
        error = ForeignKeyViolationError
    if prepare is not None:
        await prepare(world)
    row_id = row(world)[key]
    await assert_refused(
        world.conn, table, error, rule,
        lambda: world.conn.execute(f"DELETE FROM {table} WHERE {key} = $1", row_id),
    )
    assert await world.conn.fetchval(f"SELECT count(*) FROM {table} WHERE {key} = $1", row_id) == 1


# ------------------------------------------------------------------------------------------ completeness

# Rules that cannot be broken on their own: each is a unique key on a primary key plus another column,
# there to be the target of a composite foreign key (whose cases above show it working).
IMPLIED_BY_PRIMARY_KEY = {
    "services_service_clinic_key",
    "staff_staff_clinic_key",
    "pets_pet_owner_key",
    "slots_slot_service_key",
}

# The staff no-overlap rule exists once per monthly partition (slots_YYYYMM_no_staff_overlap).
OVERLAP_RULE = "slots_YYYYMM_no_staff_overlap"


async def test_every_schema_rule_has_a_case(module_conn: asyncpg.Connection) -> None:
    """A rule added to the schema without a case here fails this test."""
    tables = list(MAKERS)
    # Named constraints of the tables and of their partitions, without the copies PostgreSQL makes on
    # partitions (conparentid) and without NOT NULL constraints (catalogued from 18 on, tested above).
    constraints = await module_conn.fetch(
        """
        SELECT c.conname FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid
        WHERE c.contype IN ('c', 'f', 'u', 'p', 'x') AND c.conislocal AND c.conparentid = 0
          AND cl.relnamespace = 'public'::regnamespace AND (cl.relname = ANY($1) OR cl.relispartition)
        """,
        tables,
    )
    # Unique indexes that are no constraint (expression and partial ones).
    indexes = await module_conn.fetch(
        """
        SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        WHERE x.indisunique AND t.relname = ANY($1)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        """,
        tables,
    )
    in_schema = {row["conname"] for row in constraints} | {row["relname"] for row in indexes}
    overlap_rules = {name for name in in_schema if name.endswith("_no_staff_overlap")}
    assert overlap_rules, "no slots partition has the staff no-overlap rule"
    in_schema = (in_schema - overlap_rules) | {OVERLAP_RULE}

    covered = {param.values[1] for param in ALL_CASES} | {param.values[3] for param in DELETE_CASES}
    covered |= {OVERLAP_RULE}
    missing = in_schema - covered - IMPLIED_BY_PRIMARY_KEY
    assert not missing, f"schema rules without a case: {sorted(missing)}"
    assert IMPLIED_BY_PRIMARY_KEY <= in_schema
