"""Every statement of a hold, confirm, payment, cancel, reschedule and expiry runs on one shard on Citus.

On a real distributed database (a coordinator and two workers, migrated and distributed by ``vetbook citus
distribute``), each write-path statement of the engine, the slots' places and the payments is EXPLAINed
with the values of a real scene (made through the services): its plan must be Citus's single-task router
plan on one worker, with no intermediate results through the coordinator (a "Distributed Subplan") and no
INSERT … SELECT pulled to the coordinator. A statement across clinics is the control: the same check
refuses its plan.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from tests.booking.helpers import book, clinic_scene, mark_paid, owner, slot
from tests.conftest import connected
from web.booking import services
from web.booking import statements as booking_q
from web.core.shard_keys import new_id, new_id_today
from web.payments import refund_statements as refund_q
from web.payments import statements as payment_q
from web.slots import statements as slot_q


def router_plan_problem(plan: str) -> str | None:
    """None when ``plan`` is a single-shard router plan, else what is wrong with it."""
    if "Citus Adaptive" not in plan and "Citus Router" not in plan:
        return "not planned by Citus"
    if "Distributed Subplan" in plan:
        return "runs parts of it through the coordinator (Distributed Subplan)"
    if "pull to coordinator" in plan:
        return "pulls an INSERT … SELECT to the coordinator"
    if plan.count("Task Count:") != 1 or "Task Count: 1\n" not in plan + "\n":
        return "more than one task (more than one shard)"
    return None


async def plan_of(conn: asyncpg.Connection, statement: str, *args) -> str:
    rows = await conn.fetch("EXPLAIN (COSTS OFF) " + statement, *args)
    return "\n".join(row[0] for row in rows)


@pytest.fixture
async def scene(on_citus: str, conn_citus: asyncpg.Connection) -> dict:
    """A clinic with a free slot, a live hold, a booking waiting for payment with a started payment, and a
    paid booking: every id the statements below need, made through the services on the distributed
    database."""
    conn = conn_citus
    clinic_scene_ = await clinic_scene(conn)
    person = await owner(conn, pets=3)
    free = await slot(conn, clinic_scene_, capacity=3, days=8)
    held = await services.hold(person.user, free["slot_id"], person.pets[0]["pet_id"], "citus-key-0001")
    waiting = await book(person, await slot(conn, clinic_scene_, days=9), person.pets[1])
    paid = await book(person, await slot(conn, clinic_scene_, days=10), person.pets[2])
    assert await mark_paid(paid["booking_id"])
    payment_id = await conn.fetchval("SELECT payment_id FROM bookings WHERE clinic_id = $1 AND booking_id = $2",
                                     paid["clinic_id"], paid["booking_id"])
    reservation = await conn.fetchrow("SELECT * FROM reservations WHERE clinic_id = $1 AND reservation_id = $2",
                                      free["clinic_id"], held["reservation_id"])
    return {"clinic": clinic_scene_.clinic["clinic_id"], "service": clinic_scene_.service["service_id"],
            "owner": person.user_id, "pet": person.pets[0]["pet_id"], "slot": free, "hold": dict(reservation),
            "waiting": waiting, "paid": paid, "payment": payment_id}


@pytest.fixture
async def conn_citus(on_citus: str):
    async with connected(on_citus) as connection:
        yield connection


def write_path(s: dict) -> dict[str, tuple[str, tuple]]:
    """Each write-path statement with real arguments from the scene ``s``."""
    clinic, slot_ = s["clinic"], s["slot"]
    day, slot_id = slot_["date"], slot_["slot_id"]
    hold, waiting, paid = s["hold"], s["waiting"], s["paid"]
    booking, created = waiting["booking_id"], waiting["created_at"]
    refund_id = new_id_today(clinic)
    now = datetime.now(UTC)
    price = Decimal("150000")
    return {
        # holds
        "hold: take a place": (booking_q.TAKE_PLACE_FOR_HOLD,
                               (clinic, slot_id, day, True, s["pet"], s["owner"], 5, "citus-key-0002")),
        "hold: insert the hold": (booking_q.INSERT_RESERVATION,
                                  (clinic, new_id(clinic, day), s["owner"], s["pet"], slot_id, day, s["service"], 600,
                                   "t" * 43, None)),
        "hold: why refused": (booking_q.HOLD_VERDICT, (clinic, slot_id, day, s["pet"], s["owner"])),
        "hold: repeated key": (booking_q.HOLD_BY_IDEMPOTENCY_KEY, (clinic, s["owner"], "citus-key-0001")),
        "hold: pet busy": (booking_q.PET_IS_BUSY, (clinic, s["pet"], slot_["start_time"], slot_["end_time"], None, day)),
        "release": (booking_q.RELEASE_RESERVATION, (clinic, hold["reservation_id"], s["owner"])),
        # confirm
        "confirm: the hold": (booking_q.CONFIRM_HOLD, (clinic, hold["reservation_id"], s["owner"], hold["lock_token"])),
        "confirm: insert the booking": (booking_q.INSERT_CONFIRMED_BOOKING,
                                        (clinic, new_id_today(clinic), hold["reservation_id"], s["owner"], s["pet"],
                                         s["service"], slot_id, day, None, price, "IDR", None, "app", 30,
                                         slot_["start_time"], "ABCDEFGH")),
        "confirm: why refused": (booking_q.CONFIRM_VERDICT, (clinic, hold["reservation_id"], s["owner"], "x")),
        "confirm: repeated": (booking_q.BOOKING_OF_CONFIRMED_HOLD, (clinic, hold["reservation_id"], s["owner"])),
        "confirm: expired hold": (booking_q.EXPIRE_HOLD, (clinic, hold["reservation_id"])),
        # bookings
        "lock a booking": (booking_q.BOOKING_FOR_UPDATE, (clinic, booking, created - timedelta(days=1), created)),
        "history row": (booking_q.RECORD_HISTORY, (clinic, new_id_today(clinic), booking, created, "pending_payment",
                                                   "cancelled", None, "customer_request", None)),
        "cancel: who cancelled": (booking_q.CANCELLED_BY, (clinic, booking, created)),
        "cancel": (booking_q.CANCEL_BOOKING, (clinic, booking, created, "failed", Decimal(0), "customer_request", None)),
        "reschedule: old booking": (booking_q.MARK_RESCHEDULED, (clinic, booking, created)),
        "reschedule: new booking": (booking_q.INSERT_BOOKING,
                                    (clinic, new_id_today(clinic), None, s["owner"], s["pet"], s["service"], slot_id,
                                     day, None, "pending_payment", "pending", price, Decimal(0), price, "IDR", None,
                                     "app", now + timedelta(hours=1), None, booking, created, "ABCDEFGH")),
        "reschedule: its replacement": (booking_q.REPLACEMENT_OF, (clinic, booking, created)),
        "desk: check-in": (booking_q.CHANGE_STATUS_AT_DESK, (clinic, paid["booking_id"], paid["created_at"],
                                                              "in_progress")),
        "desk: complete": (booking_q.COMPLETE_AT_DESK, (clinic, paid["booking_id"], paid["created_at"])),
        "blocking: lock bookings": (booking_q.LOCK_BOOKINGS_NOWAIT, (clinic, [booking])),
        "blocking: lock holds": (booking_q.LOCK_HOLDS_NOWAIT, (clinic, [hold["reservation_id"]])),
        "blocking: cancel holds": (booking_q.CANCEL_HOLDS, (clinic, [hold["reservation_id"]])),
        # expiry
        "expiry: holds": (booking_q.EXPIRE_HOLDS, (clinic, 500)),
        "expiry: lock an unpaid booking": (booking_q.BOOKING_FOR_EXPIRY, (clinic, booking, created, created)),
        "expiry: cancel an unpaid booking": (booking_q.CANCEL_UNPAID, (clinic, booking, created)),
        # a slot's places
        "places: take": (slot_q.TAKE_PLACE, (clinic, slot_id, day, False)),
        "places: give back": (slot_q.GIVE_BACK_PLACES, (clinic, slot_id, day, 1)),
        "places: give back many": (slot_q.GIVE_BACK_PLACES_OF_MANY, (clinic, [slot_id], [day], [1])),
        "places: mark full": (slot_q.MARK_FULL_IF_NO_PLACE_LEFT, (clinic, slot_id, day)),
        # payments
        "payment: by key": (payment_q.PAYMENT_BY_KEY, (clinic, "citus-pay-0001")),
        "payment: with its booking": (payment_q.PAYMENT_WITH_BOOKING, (clinic, s["payment"])),
        "payment: start": (payment_q.INSERT_PAYMENT, (clinic, new_id_today(clinic), booking, created, price, "IDR",
                                                     "sandbox", "sandbox", now, "citus-pay-0001")),
        "payment: the gateway's answer": (payment_q.STORE_STARTED, (clinic, s["payment"], "x", "/pay", None)),
        "payment: lock": (payment_q.LOCK_PAYMENT, (clinic, s["payment"])),
        "payment: complete": (payment_q.COMPLETE_PAYMENT, (clinic, s["payment"], "{}", None)),
        "payment: refund a late one": (payment_q.REFUND_LATE_PAYMENT, (clinic, s["payment"], "{}", None)),
        "payment: fail": (payment_q.FAIL_PAYMENT, (clinic, s["payment"], "failed", "{}")),
        "payment: note a second settlement": (payment_q.NOTE_UNRECORDED_SETTLEMENT, (clinic, s["payment"], "{}",
                                                                                        None)),
        "payment: record a refund": (payment_q.RECORD_REFUND_ON_PAYMENT, (clinic, s["payment"], price, "{}")),
        "payment: end waiting ones of a chain": (payment_q.EXPIRE_PENDING_PAYMENTS_OF_CHAIN, (clinic, booking)),
        "payment: end waiting ones": (payment_q.EXPIRE_PENDING_PAYMENTS_OF_BOOKING, (clinic, booking)),
        "payment: add a note": (payment_q.ADD_NOTE, (clinic, s["payment"], "{}")),
        "payment: confirms its booking": (booking_q.CONFIRM_PAID_BOOKING, (clinic, booking, created, s["payment"])),
        "payment: late refund on the booking": (booking_q.RECORD_BOOKING_REFUND, (clinic, booking, created,
                                                                                  s["payment"])),
        "payment: due at the visit": (booking_q.SET_PAYMENT_DUE, (clinic, booking, created, now)),
        "desk payment: pending one": (payment_q.PENDING_DESK_PAYMENT, (clinic, booking, "clinic")),
        "payment: the gateway's fee": (payment_q.STORE_FEE, (clinic, s["payment"], Decimal("4000"))),
        # refunds (web/payments/refunds.py)
        "refund: its payment": (refund_q.PAYMENT_FOR_REFUND, (clinic, s["payment"])),
        "refund: request": (refund_q.INSERT_REFUND, (clinic, refund_id, s["payment"], paid["booking_id"], price, "IDR",
                                                     "standard_cancellation", "sandbox", "vetbook-refund-x",
                                                     "requested", None, "{}")),
        "refund: claim the due ones": (refund_q.CLAIM_DUE_REFUNDS, (clinic, 300)),
        "refund: succeeded": (refund_q.REFUND_SUCCEEDED, (clinic, refund_id, "gw-1")),
        "refund: sent": (refund_q.REFUND_SENT, (clinic, refund_id, "gw-1", 600)),
        "refund: manual": (refund_q.REFUND_MANUAL, (clinic, refund_id, "why")),
        "refund: retry": (refund_q.REFUND_RETRY, (clinic, refund_id, "timeout", 60, False)),
        "refund: paid by hand": (refund_q.REFUND_PAID_BY_HAND, (clinic, refund_id, s["owner"], "{}")),
        "refund: by key": (refund_q.REFUND_BY_KEY, (clinic, "vetbook-refund-x")),
        "refund: the desk's list": (refund_q.REFUNDS_TO_PAY_BY_HAND, (clinic,)),
        "refund: a booking's": (refund_q.REFUNDS_OF_BOOKINGS, (clinic, [paid["booking_id"]])),
    }


async def test_every_write_path_statement_runs_on_one_shard(scene: dict, conn_citus: asyncpg.Connection) -> None:
    problems = {}
    for name, (statement, args) in write_path(scene).items():
        try:
            plan = await plan_of(conn_citus, statement, *args)
        except asyncpg.PostgresError as error:
            problems[name] = f"Citus refuses it: {error}"
            continue
        if (problem := router_plan_problem(plan)) is not None:
            problems[name] = f"{problem}:\n{plan}"
    assert problems == {}, "\n\n".join(f"{name}: {problem}" for name, problem in problems.items())


async def test_the_check_refuses_a_statement_across_clinics(scene: dict, conn_citus: asyncpg.Connection) -> None:
    # The same kind of statement without the clinic: every shard has to look.
    across = await plan_of(conn_citus, "UPDATE reservations SET status = 'expired' WHERE reservation_id = $1",
                           scene["hold"]["reservation_id"])
    assert router_plan_problem(across) == "more than one task (more than one shard)", across
    # And a hold written as one statement with its INSERT inside a WITH (as before migration 0021).
    one_statement = f"""
    WITH taken AS ({slot_q.take_place_where("$1", "$2", "$3", "true", returning="s.slot_id, s.date, s.service_id")})
    INSERT INTO reservations (clinic_id, reservation_id, user_id, pet_id, slot_id, slot_date, service_id,
                              expires_at, lock_token)
    SELECT $1, $4, $5, $6, slot_id, date, service_id, now() + interval '10 minutes', $7 FROM taken
    """
    try:
        plan = await plan_of(conn_citus, one_statement, scene["clinic"], scene["slot"]["slot_id"],
                             scene["slot"]["date"], new_id(scene["clinic"], scene["slot"]["date"]), scene["owner"],
                             scene["pet"], "t" * 43)
    except asyncpg.FeatureNotSupportedError as refused:  # Citus cannot even plan it with parameters
        plan = str(refused)
    assert router_plan_problem(plan) is not None, plan


async def test_each_shard_holds_its_clinics_rows(scene: dict, conn_citus: asyncpg.Connection) -> None:
    """The clinic's rows of every distributed table are in one shard group on one worker."""
    placements = await conn_citus.fetch(
        """
        SELECT logicalrelid::text AS table_name, nodeport
        FROM pg_dist_shard JOIN pg_dist_placement USING (shardid) JOIN pg_dist_node USING (groupid)
        WHERE shardid = ANY (SELECT get_shard_id_for_distribution_column(t, $1::uuid)
                             FROM unnest(ARRAY['slots', 'reservations', 'bookings', 'payment_records',
                                               'booking_history']::regclass[]) AS t)
        """,
        scene["clinic"],
    )
    assert {row["table_name"] for row in placements} == {"slots", "reservations", "bookings", "payment_records",
                                                         "booking_history"}
    assert len({row["nodeport"] for row in placements}) == 1
    # The unrelated clinic's id routes elsewhere or to the same node, but never without a shard.
    assert await conn_citus.fetchval("SELECT get_shard_id_for_distribution_column('bookings', $1::uuid)",
                                     uuid.uuid4()) is not None
