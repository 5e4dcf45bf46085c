"""Reads of holds and bookings for pages and the API (read models): one query each, scoped to who asks.

The rules that change them are the engine's (web/booking/services.py); these only read."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import asyncpg

from web.accounts.auth import ROLE_OWNER, CurrentUser
from web.booking import statements as q
from web.core import sql
from web.core.errors import NotFound
from web.core.messages import N_


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
    where, args = _scope(actor)
    row = await sql.fetchrow(
        f"{q.BOOKING_READ} WHERE b.booking_id = ${len(args) + 1} AND {where}", *args, booking_id
    )
    if row is None:
        raise NotFound(N_("No such booking."))
    return dict(row)


async def owner_bookings(owner: CurrentUser, limit: int = 200) -> list[dict]:
    """The owner's bookings with clinic, service, pet and payment details, newest visit first (one query)."""
    if owner.role != ROLE_OWNER:
        return []
    rows = await sql.fetch(f"{q.OWNER_BOOKINGS} ORDER BY s.start_time DESC LIMIT {int(limit)}", owner.user_id)
    return [dict(row) for row in rows]


async def owner_booking(owner: CurrentUser, booking_id: UUID) -> dict:
    """One of the owner's bookings with its details (404 for anyone else's or a missing one)."""
    row = None
    if owner.role == ROLE_OWNER:
        row = await sql.fetchrow(f"{q.OWNER_BOOKINGS} AND b.booking_id = $2", owner.user_id, booking_id)
    if row is None:
        raise NotFound(N_("No such booking."))
    return dict(row)


async def owner_reservation(owner: CurrentUser, reservation_id: UUID) -> dict:
    """One of the owner's holds with its slot, clinic, service, pet and price (and its booking once
    confirmed). 404 for anyone else's or a missing one. The price is what ``confirm`` would charge."""
    row = None
    if owner.role == ROLE_OWNER:
        row = await sql.fetchrow(q.OWNER_RESERVATION, reservation_id, owner.user_id)
    if row is None:
        raise NotFound(N_("No such hold."))
    reservation = dict(row)
    price = Decimal(reservation["price"] or 0)
    reservation.update(total_amount=price, discount_amount=Decimal(0), final_amount=price)
    return reservation


async def active_bookings_in_slots(slot_ids: list[UUID], days: list[date]) -> list[asyncpg.Record]:
    """The active bookings (waiting for payment, confirmed, checked in) of these slots, with pet and owner
    names, by start time: what stands in the way of blocking them."""
    return await sql.fetch(q.ACTIVE_BOOKINGS_IN_SLOTS, slot_ids, days)


async def live_holds_in_slots(slot_ids: list[UUID], days: list[date]) -> list[asyncpg.Record]:
    """The holds of these slots that still keep a place."""
    return await sql.fetch(q.LIVE_HOLDS_IN_SLOTS, slot_ids, days)
