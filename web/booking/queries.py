"""Reads of holds and bookings for pages and the API (read models): one query each, scoped to who asks.

The rules that change them are the engine's (web/booking/services.py); these only read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import asyncpg

from web.accounts.auth import ROLE_OWNER, CurrentUser
from web.booking import statements as q
from web.booking.keys import locate_booking, locate_hold
from web.core import sql
from web.core.errors import NotFound
from web.core.messages import N_
from web.payments import refunds


def _scope(actor: CurrentUser) -> tuple[str, list]:
    if actor.role == ROLE_OWNER:
        return "b.user_id = $1", [actor.user_id]
    if actor.clinic_id is None:  # a manager of every clinic
        return "TRUE", []
    return "b.clinic_id = $1", [actor.clinic_id]


async def list_bookings(actor: CurrentUser, limit: int = 200) -> list[dict]:
    """The actor's bookings (an owner's own; staff: their clinic's), newest visit first."""
    where, args = _scope(actor)
    rows = await sql.fetch(f"{q.BOOKING_READ} WHERE {where} ORDER BY s.start_time DESC LIMIT {int(limit)}", *args)
    return [dict(row) for row in rows]


async def get_booking(actor: CurrentUser, booking_id: UUID) -> dict:
    """One booking the actor may see (404 otherwise), read on its clinic's shard."""
    key = await locate_booking(booking_id)
    where, args = _scope(actor)
    row = None
    if key is not None:
        first = len(args) + 1
        row = await sql.fetchrow(
            f"{q.BOOKING_READ} WHERE b.clinic_id = ${first} AND s.clinic_id = ${first} AND b.booking_id = ${first + 1}"
            f" AND b.created_at BETWEEN ${first + 2} AND ${first + 3} AND {where}",
            *args, key.clinic_id, booking_id, key.created.earliest, key.created.latest,
        )
    if row is None:
        raise NotFound(N_("No such booking."))
    return dict(row)


def _with_last_attempts(bookings: list[dict], attempts: list[asyncpg.Record]) -> list[dict]:
    """Each booking with the latest payment attempt along its reschedule chain (an attempt names the booking
    it was started for, which a reschedule leaves behind): ``last_payment_*`` (None when there is none)."""
    came_from: dict[UUID, UUID | None] = {}
    latest_of: dict[UUID, asyncpg.Record] = {}
    for row in attempts:
        came_from[row["booking_id"]] = row["rescheduled_from_booking_id"]
        if row["payment_id"] is not None:
            known = latest_of.get(row["booking_id"])
            if known is None or row["created_at"] > known["created_at"]:
                latest_of[row["booking_id"]] = row
    for booking in bookings:
        latest, current, steps = None, booking["booking_id"], 0
        while current is not None and steps <= 20:
            found = latest_of.get(current)
            if found is not None and (latest is None or found["created_at"] > latest["created_at"]):
                latest = found
            current, steps = came_from.get(current), steps + 1
        booking.update(
            last_payment_id=latest["payment_id"] if latest else None,
            last_payment_provider=latest["payment_provider"] if latest else None,
            last_payment_status=latest["status"] if latest else None,
            last_payment_url=latest["payment_url"] if latest else None,
        )
    return bookings


async def owner_bookings(owner: CurrentUser, limit: int = 200) -> list[dict]:
    """The owner's bookings with clinic, service, pet and payment details, newest visit first (two queries:
    the bookings, and their payment attempts; across clinics, so on Citus both read every shard)."""
    if owner.role != ROLE_OWNER:
        return []
    rows = await sql.fetch(f"{q.OWNER_BOOKINGS} ORDER BY s.start_time DESC LIMIT {int(limit)}", owner.user_id)
    if not rows:
        return []
    attempts = await sql.fetch(q.OWNER_PAYMENT_ATTEMPTS, owner.user_id)
    return _with_last_attempts([dict(row) for row in rows], attempts)


async def owner_booking(owner: CurrentUser, booking_id: UUID) -> dict:
    """One of the owner's bookings with its details (404 for anyone else's or a missing one), read on its
    clinic's shard."""
    key = await locate_booking(booking_id) if owner.role == ROLE_OWNER else None
    row = None
    if key is not None:
        row = await sql.fetchrow(
            f"{q.OWNER_BOOKINGS} AND b.clinic_id = $2 AND b.booking_id = $3 AND b.created_at BETWEEN $4 AND $5",
            owner.user_id, key.clinic_id, booking_id, key.created.earliest, key.created.latest)
    if row is None:
        raise NotFound(N_("No such booking."))
    attempts = await sql.fetch(f"{q.OWNER_PAYMENT_ATTEMPTS} AND b.clinic_id = $2", owner.user_id, key.clinic_id)
    booking = _with_last_attempts([dict(row)], attempts)[0]
    booking["refunds"] = await refunds.refunds_of_bookings(key.clinic_id, _chain(booking_id, attempts))
    return booking


def _chain(booking_id: UUID, attempts: list[asyncpg.Record]) -> list[UUID]:
    """The booking and those it was rescheduled from (their payments may carry its refunds)."""
    came_from = {row["booking_id"]: row["rescheduled_from_booking_id"] for row in attempts}
    chain, current = [], booking_id
    while current is not None and current not in chain and len(chain) <= 20:
        chain.append(current)
        current = came_from.get(current)
    return chain


async def owner_reservation(owner: CurrentUser, reservation_id: UUID) -> dict:
    """One of the owner's holds with its slot, clinic, service, pet and price (and its booking once
    confirmed). 404 for anyone else's or a missing one. The price is what ``confirm`` would charge."""
    key = await locate_hold(reservation_id) if owner.role == ROLE_OWNER else None
    row = None
    if key is not None:
        row = await sql.fetchrow(q.OWNER_RESERVATION, key.clinic_id, reservation_id, owner.user_id)
    if row is None:
        raise NotFound(N_("No such hold."))
    reservation = dict(row)
    price = Decimal(reservation["price"] or 0)
    reservation.update(total_amount=price, discount_amount=Decimal(0), final_amount=price)
    return reservation


async def active_bookings_in_slots(clinic_id: UUID, slot_ids: list[UUID], days: list[date]) -> list[asyncpg.Record]:
    """The active bookings (waiting for payment, confirmed, checked in) of these slots of the clinic, with pet
    and owner names, by start time: what stands in the way of blocking them."""
    return await sql.fetch(q.ACTIVE_BOOKINGS_IN_SLOTS, clinic_id, slot_ids, days)


async def live_holds_in_slots(clinic_id: UUID, slot_ids: list[UUID], days: list[date]) -> list[asyncpg.Record]:
    """The holds of these slots of the clinic that still keep a place."""
    return await sql.fetch(q.LIVE_HOLDS_IN_SLOTS, clinic_id, slot_ids, days)
