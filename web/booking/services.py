"""The booking engine: hold, release, confirm, cancel, reschedule, staff transitions and expiry.

The only place where booking rules live. Each operation is one transaction (``transaction_as``: who acts,
why, and with what refund, written into the booking's history by the same transaction); capacity is
guarded by SQL (web/booking/statements.py), never by a read-then-write in Python. Someone else's hold or
booking is "not found", never "forbidden".

Every statement names the clinic of what it changes, read from the id it was given (web/booking/keys.py,
web/slots/queries.py ``locate_slot``): on Citus each runs on the one shard holding that clinic
(docs/scaling.md). An owner's hold limit and a pet's overlapping visits are therefore judged per clinic.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

import asyncpg

from web.accounts.auth import ROLE_OWNER, CurrentUser
from web.booking import state
from web.booking import statements as q
from web.booking.codes import new_booking_code
from web.booking.keys import BookingKey, HoldKey, key_of, locate_booking, locate_hold
from web.booking.tables import Reservation
from web.core import metrics, rate_limit, shard_keys, sql
from web.core.announcements import announce
from web.core.audit import current_actor, transaction_as
from web.core.client_keys import CLIENT_KEY
from web.core.errors import Conflict, DomainError, Gone, InvalidInput, NotFound
from web.core.messages import N_
from web.payments import ledger
from web.settings import get_settings
from web.slots import places
from web.slots.queries import SlotKey, locate_slot

SLOT_JUST_TAKEN = N_("Sorry, this slot was just taken. Please choose another time.")


class SlotUnavailable(Conflict):
    """The slot cannot be held: full, blocked, started, or too close to its start."""


@dataclass(frozen=True)
class RefundPolicy:
    name: str
    percentage: int


STANDARD_POLICY = RefundPolicy("standard_cancellation", 90)
CLINIC_POLICY = RefundPolicy("clinic_cancellation", 100)
LATE_POLICY = RefundPolicy("late_cancellation", 0)

# Why a hold can no longer be confirmed or released, by its status.
HOLD_IS_OVER = {
    "confirmed": N_("This hold is already confirmed."),
    "cancelled": N_("This hold was already released."),
    "expired": N_("This hold has expired and its place was released. Please pick the slot again."),
}

PET_ALREADY_BUSY = N_("This pet already has a visit at an overlapping time.")

CANCELLATION_REASONS = ("customer_request", "schedule_conflict", "pet_unwell", "clinic_request", "other")


def _now() -> datetime:
    return datetime.now(UTC)


def _new_lock_token() -> str:
    return secrets.token_urlsafe(32)


async def _slot_key(slot_id: UUID) -> SlotKey:
    key = await locate_slot(slot_id)
    if key is None:
        raise NotFound(N_("No such slot."))
    return key


async def _slot(key: SlotKey) -> asyncpg.Record:
    """The slot with its price and its clinic's rules."""
    slot = await sql.fetchrow(q.SLOT_WITH_RULES, key.clinic_id, key.slot_id, key.day)
    if slot is None:
        raise NotFound(N_("No such slot."))
    return slot


def _announce(booking: asyncpg.Record | dict) -> None:
    """The open pages of the booking's clinic and visit day refetch when this transaction commits."""
    announce("bookings", booking["clinic_id"], booking["slot_date"])


async def _record_history(before: asyncpg.Record | dict, after: asyncpg.Record | dict,
                          metadata: dict | None = None) -> None:
    """The history row of a status change (``before`` → ``after``, the same booking), attributed to the
    transaction's actor and reason (``transaction_as``), with ``metadata`` or the transaction's; the
    booking's day announced to the open pages."""
    if after is None:
        return
    _announce(after)
    if before["status"] == after["status"]:
        return
    actor = current_actor()
    details = metadata if metadata is not None else actor.metadata
    await sql.execute(
        q.RECORD_HISTORY, after["clinic_id"], shard_keys.new_id_today(after["clinic_id"]), after["booking_id"],
        after["created_at"], before["status"], after["status"], actor.user_id, actor.reason or "system_update",
        _json(details) if details else None,
    )


def _why_slot_cannot_be_held(slot: asyncpg.Record, now: datetime) -> str:
    if slot["status"] in ("maintenance", "unavailable"):
        return N_("This slot is not open for booking.")
    if slot["start_time"] <= now:
        return N_("This slot has already started.")
    if slot["start_time"] <= now + timedelta(minutes=slot["min_booking_notice_minutes"]):
        hours, minutes = divmod(slot["min_booking_notice_minutes"], 60)
        if hours and minutes:
            notice = N_("%(hours)d h %(minutes)d min", hours=hours, minutes=minutes)
        else:
            notice = N_("%(hours)d h", hours=hours) if hours else N_("%(minutes)d min", minutes=minutes)
        return N_("This clinic takes bookings up to %(notice)s before the start. Please choose a later time.",
                  notice=notice)
    return SLOT_JUST_TAKEN


# ------------------------------------------------------------------ holds


async def hold(owner: CurrentUser, slot_id: UUID, pet_id: UUID, idempotency_key: str | None = None) -> dict:
    """Hold one place of ``slot_id`` for ``pet_id`` for HOLD_TTL_SECONDS. Returns the reservation with
    its unguessable ``lock_token``. SlotUnavailable (409) when the slot cannot be held; nothing is
    written then. With ``idempotency_key``, a repeat (a retry after a lost connection, a double click)
    returns the hold the first request made, as it is now; the same key for another slot or pet is 422."""
    settings = get_settings()
    if owner.role != ROLE_OWNER:
        raise DomainError(N_("Only pet owners hold slots for themselves."), status=403)
    if idempotency_key is not None and not CLIENT_KEY.match(idempotency_key):
        raise InvalidInput({"idempotency_key": N_("Use 8 to 64 letters, digits or . _ : -")})
    await rate_limit.hit(f"hold:user:{owner.user_id}", settings.hold_rate_limit,
                         N_("You are holding slots too quickly. Wait a moment and try again."))
    slot = await locate_slot(slot_id)
    if slot is None:
        raise NotFound(N_("No such slot."))
    held = earlier = None
    try:
        # The slot's day is announced in the first round trip (it goes out only if the hold commits).
        async with transaction_as(owner.user_id, reason="hold", lock=(q.OWNER_HOLDS_LOCK, str(owner.user_id)),
                                  announce=(("slots", slot.clinic_id, slot.day),)):
            # Under the owner's lock: no other hold of this owner, with this key or not, is being made now.
            taken = await sql.fetchrow(q.TAKE_PLACE_FOR_HOLD, slot.clinic_id, slot.slot_id, slot.day,
                                       places.WITH_NOTICE, pet_id, owner.user_id, settings.max_active_holds,
                                       idempotency_key)
            if taken is not None:
                # A hold's id carries its slot's day, so that its confirm can announce it up front.
                held = await sql.fetchrow(
                    q.INSERT_RESERVATION, slot.clinic_id, shard_keys.new_id(slot.clinic_id, slot.day), owner.user_id,
                    pet_id, slot.slot_id, slot.day, taken["service_id"], settings.hold_ttl_seconds,
                    _new_lock_token(), idempotency_key)
            elif idempotency_key is not None:
                earlier = await sql.fetchrow(q.HOLD_BY_IDEMPOTENCY_KEY, slot.clinic_id, owner.user_id,
                                             idempotency_key)
            if taken is None and earlier is None:
                # Nothing was written: say why, and roll back (nothing to announce).
                verdict = await sql.fetchrow(q.HOLD_VERDICT, slot.clinic_id, slot.slot_id, slot.day, pet_id,
                                             owner.user_id)
                raise _why_not_held(verdict, settings.max_active_holds)
            if earlier is not None:
                raise _Repeated()
    except _Repeated:
        pass
    except DomainError as why:
        metrics.HOLDS.labels("just_taken" if why.detail == SLOT_JUST_TAKEN else "refused").inc()
        raise
    if earlier is not None:
        if (earlier["slot_id"], earlier["pet_id"]) != (slot_id, pet_id):
            raise InvalidInput({"idempotency_key": N_("This key was already used for another hold.")},
                               detail=N_("This Idempotency-Key was already used for another hold."))
        metrics.HOLDS.labels("repeated").inc()
        return {"reservation_id": earlier["reservation_id"], "lock_token": earlier["lock_token"],
                "expires_at": earlier["expires_at"], "slot_id": earlier["slot_id"],
                "status": earlier["hold_status"]}
    metrics.HOLDS.labels("taken").inc()
    return {"reservation_id": held["reservation_id"], "lock_token": held["lock_token"],
            "expires_at": held["expires_at"], "slot_id": held["slot_id"], "status": held["status"]}


class _Repeated(Exception):
    """A request repeated (a hold with its idempotency key, a confirm with its token): the transaction wrote
    nothing and is rolled back; ``answer`` is what the first request made."""

    def __init__(self, answer: dict | None = None) -> None:
        super().__init__()
        self.answer = answer


def _why_not_held(held: asyncpg.Record, max_active_holds: int) -> DomainError:
    """Why a hold wrote nothing, judged in the order the rules are told."""
    if not held["own_pet"]:
        return NotFound(N_("No such pet."))
    if held["slot_id"] is None:
        return NotFound(N_("No such slot."))
    if held["pending_holds"] >= max_active_holds:
        return Conflict(N_("You can hold at most %(count)d slots at once. Confirm or release one first.",
                           count=max_active_holds))
    if held["pet_busy"]:
        return Conflict(PET_ALREADY_BUSY)
    return SlotUnavailable(_why_slot_cannot_be_held(held, _now()))


async def release(owner: CurrentUser, reservation_id: UUID) -> None:
    """Give a pending hold back; its place returns to the slot at once."""
    key = await locate_hold(reservation_id)
    if key is None:
        raise NotFound(N_("No such hold."))
    async with transaction_as(owner.user_id, reason="release"):
        released = await sql.fetchrow(q.RELEASE_RESERVATION, key.clinic_id, reservation_id, owner.user_id)
        if released is None:
            hold = await Reservation.select(Reservation.status).where(
                (Reservation.clinic_id == key.clinic_id) & (Reservation.reservation_id == reservation_id)
                & (Reservation.user_id == owner.user_id)).first()
            status = hold["status"] if hold else None
            if status is None:
                raise NotFound(N_("No such hold."))
            raise Conflict(HOLD_IS_OVER.get(status, N_("This hold is no longer pending.")))
        await places.give_back(key.clinic_id, released["slot_id"], released["slot_date"])


async def confirm(owner: CurrentUser, reservation_id: UUID, lock_token: str, notes: str | None = None,
                  source: str = "app") -> dict:
    """Turn a pending, unexpired hold into a booking priced from the slot (or its service). A free
    service is confirmed (and paid) at once; otherwise the booking waits for payment until
    ``payment_due_at``. Confirming a confirmed hold again with its token returns the same booking (so a
    retried request is safe). 410 when the hold expired (its place is returned), 409 when it was released
    or the token does not match."""
    if notes is not None and len(notes) > 2000:
        raise InvalidInput({"notes": N_("Use at most 2000 characters.")})
    key = await locate_hold(reservation_id)
    if key is None:
        raise NotFound(N_("No such hold."))
    # A hold's id carries its slot's day (hold() makes it so): the day's pages are told in the first round
    # trip. (An id of the old form carries none: then the day is announced when it is known.)
    slot_day = shard_keys.day_of(reservation_id)
    upfront = (("slots", key.clinic_id, slot_day), ("bookings", key.clinic_id, slot_day)) if slot_day else ()
    try:
        return await _confirm(owner, key, lock_token, notes, source, upfront)
    except _Repeated as repeated:
        return repeated.answer


async def _confirm(owner: CurrentUser, key: HoldKey, lock_token: str, notes: str | None, source: str,
                   upfront: tuple) -> dict:
    settings = get_settings()
    reservation_id = key.reservation_id
    # Every refusal is raised inside the transaction, which then rolls back (and announces nothing).
    async with transaction_as(owner.user_id, reason="confirm", announce=upfront):
        # The guarded step: the hold confirmed (and its slot marked full) only when pending, unexpired and the
        # token matches; then the booking, priced from the slot or its service.
        hold = await sql.fetchrow(q.CONFIRM_HOLD, key.clinic_id, reservation_id, owner.user_id, lock_token or "")
        if hold is not None:
            announce("slots", key.clinic_id, hold["slot_date"])
            announce("bookings", key.clinic_id, hold["slot_date"])
            booking = await sql.fetchrow(
                q.INSERT_CONFIRMED_BOOKING, key.clinic_id, shard_keys.new_id_today(key.clinic_id), reservation_id,
                owner.user_id, hold["pet_id"], hold["service_id"], hold["slot_id"], hold["slot_date"],
                hold["staff_id"], hold["price"], hold["currency"], (notes or "").strip() or None, source,
                settings.payment_ttl_minutes, hold["start_time"], new_booking_code())
            metrics.BOOKINGS.labels(source).inc()
            # With the visit's times: what the API answers, without reading the booking again.
            return {**dict(booking), "start_time": hold["start_time"], "end_time": hold["end_time"]}
        verdict = await sql.fetchrow(q.CONFIRM_VERDICT, key.clinic_id, reservation_id, owner.user_id,
                                     lock_token or "")
        if verdict is None:
            raise NotFound(N_("No such hold."))
        if not verdict["token_matches"]:
            raise Conflict(N_("This hold's token does not match."))
        status = verdict["hold_status"]
        if status == state.HOLD_CONFIRMED:
            # A repeat (a retry after a lost connection, a second tab) by the token's holder: the same booking.
            booking = await sql.fetchrow(q.BOOKING_OF_CONFIRMED_HOLD, key.clinic_id, reservation_id, owner.user_id)
            if booking is not None:
                raise _Repeated(dict(booking))
            raise Conflict(N_("This hold is already confirmed."))
        if status != state.HOLD_PENDING:
            raise (Gone if status == state.HOLD_EXPIRED else Conflict)(
                HOLD_IS_OVER.get(status, N_("This hold is no longer pending.")))
        # Pending but past its expiry: hand the place back now (the expiry job would do it a moment later).
        expired = await sql.fetchrow(q.EXPIRE_HOLD, key.clinic_id, reservation_id)
        if expired is not None:
            await places.give_back(key.clinic_id, expired["slot_id"], expired["slot_date"])
            metrics.HOLDS.labels("expired").inc()
    raise Gone(N_("This hold has expired and its place was released. Please pick the slot again."))


# ------------------------------------------------------------------ bookings


async def _booking_key(booking_id: UUID) -> BookingKey:
    key = await locate_booking(booking_id)
    if key is None:
        raise NotFound(N_("No such booking."))
    return key


async def _lock(key: BookingKey) -> asyncpg.Record | None:
    return await sql.fetchrow(q.BOOKING_FOR_UPDATE, key.clinic_id, key.booking_id, key.created.earliest,
                              key.created.latest)


async def _booking_for_update(actor: CurrentUser, key: BookingKey) -> asyncpg.Record:
    """The booking, row-locked, if ``actor`` may act on it (its owner, or staff of its clinic)."""
    booking = await _lock(key)
    if booking is None:
        raise NotFound(N_("No such booking."))
    allowed = booking["user_id"] == actor.user_id if actor.role == ROLE_OWNER else actor.works_at(booking["clinic_id"])
    if not allowed:
        raise NotFound(N_("No such booking."))
    return booking


def refund_policy(booking: asyncpg.Record | dict, by_clinic: bool, now: datetime) -> RefundPolicy:
    """The design's standard policy (90%) up to the clinic's refund deadline, nothing after it, and 100%
    when the clinic cancels."""
    if by_clinic:
        return CLINIC_POLICY
    deadline = booking["start_time"] - timedelta(hours=booking["refund_deadline_hours"])
    return STANDARD_POLICY if now <= deadline else LATE_POLICY


def refund_amount(final_amount: Decimal, policy: RefundPolicy) -> Decimal:
    return (final_amount * policy.percentage / 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP)


async def cancel(actor: CurrentUser, booking_id: UUID, reason: str, version: int, notes: str | None = None) -> dict:
    """Cancel a booking (optimistic lock on ``version``). A paid booking is refunded by policy and the
    refund recorded on its payment; the place returns to the slot (a blocked slot stays blocked). The same
    cancel repeated by the same person (same ``version`` and reason, the booking now one version on)
    answers the cancelled booking, so that a retried request is safe."""
    if reason not in CANCELLATION_REASONS:
        raise InvalidInput({"reason": N_("Choose one of: ") + ", ".join(CANCELLATION_REASONS) + "."})
    if notes is not None and len(notes) > 2000:
        raise InvalidInput({"notes": N_("Use at most 2000 characters.")})
    by_clinic = actor.role != ROLE_OWNER
    key = await _booking_key(booking_id)
    async with transaction_as(actor.user_id, reason=reason):
        booking = await _booking_for_update(actor, key)
        clinic_id = booking["clinic_id"]
        if (booking["status"] == state.CANCELLED and booking["version"] == version + 1
                and booking["cancellation_reason"] == reason
                and await sql.fetchval(q.CANCELLED_BY, clinic_id, booking_id, booking["created_at"]) == actor.user_id):
            # This very cancel, repeated by its author (a retry after a lost connection): the booking as it is.
            return dict(booking)
        state.require_version(booking, version)
        state.require_transition(booking["status"], state.CANCELLED)
        policy, refunded = None, Decimal(0)
        if booking["payment_status"] == "paid" and booking["final_amount"] > 0:
            policy = refund_policy(booking, by_clinic, _now())
            refunded = refund_amount(booking["final_amount"], policy)
        payment_status = (
            "failed" if booking["payment_status"] == "pending"
            else "paid" if refunded == 0
            else "refunded" if refunded == booking["final_amount"]
            else "partially_refunded"
        )
        metadata = {"refund_percentage": policy.percentage, "policy_applied": policy.name,
                    "refund_amount": str(refunded)} if policy else {"refund_percentage": 0, "policy_applied": "unpaid"}
        updated = await sql.fetchrow(q.CANCEL_BOOKING, clinic_id, booking_id, booking["created_at"], payment_status,
                                     refunded, reason, notes)
        await _record_history(booking, updated, metadata)
        if refunded > 0 and booking["payment_id"] is not None:
            await ledger.record_refund(clinic_id, booking["payment_id"], refunded, policy.name, metadata)
        await ledger.end_waiting_payments_of_chain(clinic_id, booking_id)
        await places.give_back(clinic_id, booking["slot_id"], booking["slot_date"])
    metrics.CANCELLATIONS.labels("clinic" if by_clinic else "owner").inc()
    if refunded > 0:
        metrics.REFUNDS.inc()
        metrics.REFUNDED_AMOUNT.labels(booking["currency"]).inc(float(refunded))
    return dict(updated)


@dataclass(frozen=True)
class PriceChange:
    """What moving a booking to a slot priced ``new_price`` does to its money (``price_change``)."""

    new_price: Decimal
    # Money the booking holds now: its final amount when paid, else nothing.
    paid: Decimal
    # Returned to the owner at once (a paid booking moving to a cheaper time).
    refund: Decimal = Decimal(0)
    # Why the move is refused, or None.
    refused: str | None = None

    @property
    def still_to_pay(self) -> Decimal:
        """What the new booking waits for: nothing for a paid (or free) one, else the new price."""
        return Decimal(0) if self.paid > 0 or self.new_price == 0 else self.new_price


PRICIER_THAN_PAID = N_("This time costs more than was paid for the booking. Choose a time with the same price "
                       "or a lower one, or cancel the booking and book the new time.")


def _money_held(booking: asyncpg.Record | dict) -> Decimal:
    """What the booking's payment holds: its final amount when paid, else nothing."""
    return Decimal(booking["final_amount"]) if booking["payment_status"] == "paid" else Decimal(0)


def refuses_pricier_times(booking: asyncpg.Record | dict) -> bool:
    """A booking holding money cannot move to a time that costs more (``price_change``)."""
    return _money_held(booking) > 0


def price_change(booking: asyncpg.Record | dict, new_price: Decimal) -> PriceChange:
    """The rule of a reschedule's money. The new booking costs the new slot's price:

    - paid and the same price: the payment carries over;
    - paid and cheaper: the difference is refunded now, on the same payment;
    - paid and pricier: refused (a second payment for the difference would leave one booking paid by two
      payments that cancellation would have to split); the owner chooses another time, or cancels and
      books anew;
    - nothing paid yet (waiting for payment, or a free visit): the new booking waits for the new price, or
      is confirmed at once when that is zero."""
    paid = _money_held(booking)
    if paid > 0 and new_price > paid:
        return PriceChange(new_price, paid, refused=PRICIER_THAN_PAID)
    if paid > 0:
        return PriceChange(new_price, paid, refund=paid - new_price)
    return PriceChange(new_price, paid)


def _still_waits_for_the_same_amount(booking: asyncpg.Record, change: PriceChange) -> bool:
    return booking["status"] == state.PENDING_PAYMENT and booking["final_amount"] == change.new_price


def _replacement_terms(actor: CurrentUser, booking: asyncpg.Record, new_slot: asyncpg.Record,
                       change: PriceChange) -> tuple[str, str, datetime | None]:
    """(status, payment_status, payment_due_at) of the booking that replaces ``booking`` in ``new_slot``."""
    if change.still_to_pay == 0:
        return state.CONFIRMED, "paid", None
    if _still_waits_for_the_same_amount(booking, change):
        # Still waiting for the same amount: the wait carries over. A payment at the visit now happens at
        # the new visit; any other deadline never falls after the new start.
        due = booking["payment_due_at"]
        if due is None or due == booking["start_time"]:
            return state.PENDING_PAYMENT, "pending", new_slot["start_time"]
        return state.PENDING_PAYMENT, "pending", min(due, new_slot["start_time"])
    if actor.role != ROLE_OWNER:
        # The desk takes the money when the pet comes, as for a desk booking.
        return state.PENDING_PAYMENT, "pending", new_slot["start_time"]
    ttl = timedelta(minutes=get_settings().payment_ttl_minutes)
    return state.PENDING_PAYMENT, "pending", min(_now() + ttl, new_slot["start_time"])


async def reschedule(actor: CurrentUser, booking_id: UUID, new_slot_id: UUID, version: int) -> dict:
    """Move a booking to another slot of the same service, atomically: the new slot loses a place, the
    old one gets it back, the old booking becomes 'rescheduled' and a new booking costs the new slot's
    price (``price_change``: a paid booking keeps its payment, gets the difference back for a cheaper
    time and cannot move to a pricier one; an unpaid or free booking waits for the new price). The same
    rule holds for owners and for the desk."""
    key = await _booking_key(booking_id)
    new_slot_key = await _slot_key(new_slot_id)
    if new_slot_key.clinic_id != key.clinic_id:
        # Another clinic's slot is another clinic's service.
        raise InvalidInput({"slot_id": N_("Choose a slot of the same service.")})
    new_slot = await _slot(new_slot_key)
    clinic_id = key.clinic_id
    async with transaction_as(actor.user_id, reason="reschedule"):
        booking = await _booking_for_update(actor, key)
        state.require_version(booking, version)
        state.require_transition(booking["status"], state.RESCHEDULED)
        if new_slot["slot_id"] == booking["slot_id"]:
            raise Conflict(N_("The booking is already in this slot."))
        if new_slot["service_id"] != booking["service_id"]:
            raise InvalidInput({"slot_id": N_("Choose a slot of the same service.")})
        change = price_change(booking, Decimal(new_slot["price"] or 0))
        if change.refused:
            raise Conflict(change.refused)
        if await sql.fetchval(q.PET_IS_BUSY, clinic_id, booking["pet_id"], new_slot["start_time"],
                              new_slot["end_time"], booking_id, new_slot["date"]):
            raise Conflict(PET_ALREADY_BUSY)
        # Two slot rows change: lock them in slot_id order, as every multi-slot statement does.
        moves = sorted([(new_slot["slot_id"], "take"), (booking["slot_id"], "return")])
        for _slot_id, move in moves:
            if move == "take":
                if not await places.take_place(clinic_id, new_slot["slot_id"], new_slot["date"],
                                               with_notice=places.WITH_NOTICE):
                    raise SlotUnavailable(_why_slot_cannot_be_held(new_slot, _now()))
            else:
                await places.give_back(clinic_id, booking["slot_id"], booking["slot_date"])
        money = None
        if change.new_price != booking["final_amount"]:
            # The history row of the old booking says what the move did to the money.
            money = {"old_price": str(booking["final_amount"]), "new_price": str(change.new_price)}
            if change.refund:
                money.update(refund_amount=str(change.refund), policy_applied="reschedule_price_difference")
        moved = await sql.fetchrow(q.MARK_RESCHEDULED, clinic_id, booking_id, booking["created_at"])
        await _record_history(booking, moved, money)
        status, payment_status, due = _replacement_terms(actor, booking, new_slot, change)
        # A payment that took money stays the booking's; an attempt still waiting stays only while the
        # amount it asks for is the amount due.
        carried_payment = booking["payment_id"] if change.paid > 0 else None
        if not _still_waits_for_the_same_amount(booking, change):
            await ledger.end_waiting_payments_of_chain(clinic_id, booking_id)
        replacement = await sql.fetchrow(
            q.INSERT_BOOKING,
            clinic_id, shard_keys.new_id_today(clinic_id), None, booking["user_id"], booking["pet_id"],
            booking["service_id"], new_slot["slot_id"], new_slot["date"], new_slot["staff_id"], status,
            payment_status, change.new_price, Decimal(0), change.new_price, booking["currency"], booking["notes"],
            booking["booking_source"], due, carried_payment, booking_id, booking["created_at"], new_booking_code(),
        )
        _announce(replacement)
        await places.mark_full_if_no_place_left(clinic_id, new_slot["slot_id"], new_slot["date"])
        if carried_payment is not None:
            note = {"carried_to_booking": str(replacement["booking_id"])}
            if change.refund:
                await ledger.record_refund(clinic_id, carried_payment, change.refund, "reschedule_price_difference",
                                           {**note, "refund_reason": "reschedule_price_difference"})
            else:
                await ledger.add_note(clinic_id, carried_payment, note)
    return dict(replacement)


async def _staff_transition(actor: CurrentUser, booking_id: UUID, version: int, wanted: str, reason: str) -> dict:
    if actor.role == ROLE_OWNER:
        raise NotFound(N_("No such booking."))
    key = await _booking_key(booking_id)
    async with transaction_as(actor.user_id, reason=reason):
        booking = await _booking_for_update(actor, key)
        state.require_version(booking, version)
        state.require_transition(booking["status"], wanted)
        if wanted == state.NO_SHOW and not state.can_mark_no_show(booking, _now()):
            raise Conflict(N_("A visit can be marked as a no-show only after its start time."))
        if wanted == state.COMPLETED:
            updated = await sql.fetchrow(q.COMPLETE_AT_DESK, key.clinic_id, booking_id, booking["created_at"])
        else:
            updated = await sql.fetchrow(q.CHANGE_STATUS_AT_DESK, key.clinic_id, booking_id, booking["created_at"],
                                         wanted)
        await _record_history(booking, updated)
    return dict(updated)


async def check_in(actor: CurrentUser, booking_id: UUID, version: int) -> dict:
    """The pet arrived: confirmed → in_progress."""
    return await _staff_transition(actor, booking_id, version, state.IN_PROGRESS, "check_in")


async def complete(actor: CurrentUser, booking_id: UUID, version: int) -> dict:
    """The visit is over: in_progress → completed."""
    return await _staff_transition(actor, booking_id, version, state.COMPLETED, "complete")


async def mark_no_show(actor: CurrentUser, booking_id: UUID, version: int) -> dict:
    """The pet did not come: confirmed → no_show, only after the start time. The place stays used."""
    return await _staff_transition(actor, booking_id, version, state.NO_SHOW, "no_show")


# ------------------------------------------------------------------ asked for by payments and slot blocking
# These run in the caller's transaction, after it locked the booking (BOOKING_FOR_UPDATE): payments lock the
# booking first and then its payment, as cancel does.


async def booking_for_update(booking_id: UUID) -> asyncpg.Record | None:
    """The booking (with its visit's start and end and its clinic's refund rules), row-locked; None when
    there is none. For a caller that checks who may act itself (payments: the owner, or the desk)."""
    key = await locate_booking(booking_id)
    return await _lock(key) if key is not None else None


async def booking_now_holding_the_place(booking_id: UUID) -> asyncpg.Record:
    """``booking_id`` row-locked, or, when it was rescheduled, the booking that replaced it (a wait for
    payment moves to the replacement with the place)."""
    booking = await booking_for_update(booking_id)
    while booking["status"] == state.RESCHEDULED:
        replacement = await sql.fetchrow(q.REPLACEMENT_OF, booking["clinic_id"], booking["booking_id"],
                                         booking["created_at"])
        if replacement is None:
            break
        booking = await _lock(key_of({**dict(replacement), "clinic_id": booking["clinic_id"]}))
    return booking


async def confirm_paid(booking: asyncpg.Record, payment_id: UUID) -> None:
    """The booking's money was taken by ``payment_id``: pending_payment → confirmed, paid."""
    state.require_transition(booking["status"], state.CONFIRMED)
    confirmed = await sql.fetchrow(q.CONFIRM_PAID_BOOKING, booking["clinic_id"], booking["booking_id"],
                                   booking["created_at"], payment_id)
    await _record_history(booking, confirmed)


async def record_late_refund(booking: asyncpg.Record, payment_id: UUID) -> None:
    """Money arrived for a booking cancelled before it was paid, and went back in full: the booking says
    so (payment_status 'refunded') and stays cancelled."""
    await sql.fetchrow(q.RECORD_BOOKING_REFUND, booking["clinic_id"], booking["booking_id"], booking["created_at"],
                       payment_id)
    _announce(booking)


async def set_payment_due(booking: asyncpg.Record, due: datetime) -> None:
    """The booking waits for its payment until ``due`` (the visit's start, when the money is taken there)."""
    await sql.execute(q.SET_PAYMENT_DUE, booking["clinic_id"], booking["booking_id"], booking["created_at"], due)
    _announce(booking)


async def lock_bookings_nowait(clinic_id: UUID, booking_ids: list[UUID]) -> None:
    """Lock these bookings of the clinic before the caller cancels them while it holds their slots' rows:
    NOWAIT, because someone changing one of them now locks the booking, then the slot; waiting would
    deadlock (asyncpg.LockNotAvailableError instead)."""
    await sql.execute(q.LOCK_BOOKINGS_NOWAIT, clinic_id, booking_ids)


async def cancel_holds_on_blocked_slots(clinic_id: UUID, reservation_ids: list[UUID]) -> list[tuple[UUID, date, int]]:
    """Cancel these pending holds of the clinic (their slots are being blocked, and are locked by the caller);
    the places they held, as (slot_id, day, places), for the caller to give back. The holds are locked NOWAIT:
    a hold being confirmed right now has its row locked, and its confirm waits for the slot rows the caller
    holds; waiting here would deadlock (asyncpg.LockNotAvailableError instead)."""
    await sql.execute(q.LOCK_HOLDS_NOWAIT, clinic_id, reservation_ids)
    cancelled = await sql.fetch(q.CANCEL_HOLDS, clinic_id, reservation_ids)
    return [(row["slot_id"], row["slot_date"], 1) for row in cancelled]


# ------------------------------------------------------------------ expiry (background jobs)


async def expire_holds(batch_size: int = 500) -> int:
    """Expire pending holds past their expiry and return their places, clinic by clinic (each clinic's in
    one transaction on its shard). Returns how many places came back."""
    returned = expired_count = 0
    for row in await sql.fetch(q.CLINICS_WITH_EXPIRED_HOLDS):
        clinic_id = row["clinic_id"]
        async with transaction_as(None, reason="hold_expired"):
            expired = await sql.fetch(q.EXPIRE_HOLDS, clinic_id, batch_size)
            returned += await places.give_back_many(
                clinic_id, ((hold["slot_id"], hold["slot_date"], 1) for hold in expired))
        expired_count += len(expired)
    metrics.HOLDS.labels("expired").inc(expired_count)
    return returned


async def expire_unpaid_bookings(batch_size: int = 200) -> int:
    """Cancel unpaid bookings past their payment deadline (payment_status 'failed') and return their places."""
    expired = 0
    for row in await sql.fetch(q.UNPAID_PAST_DUE, batch_size):
        clinic_id = row["clinic_id"]
        async with transaction_as(None, reason="payment_expired",
                                  metadata={"refund_percentage": 0, "policy_applied": "unpaid"}):
            booking = await sql.fetchrow(q.BOOKING_FOR_EXPIRY, clinic_id, row["booking_id"], row["created_at"],
                                         row["created_at"])
            if booking is None or booking["status"] != state.PENDING_PAYMENT or booking["payment_due_at"] > _now():
                continue  # being changed (the next run retries), or paid or cancelled meanwhile
            cancelled = await sql.fetchrow(q.CANCEL_UNPAID, clinic_id, booking["booking_id"], booking["created_at"])
            await _record_history(booking, cancelled)
            await ledger.end_waiting_payments(clinic_id, booking["booking_id"])
            await places.give_back(clinic_id, booking["slot_id"], booking["slot_date"])
            expired += 1
    metrics.CANCELLATIONS.labels("payment_expired").inc(expired)
    return expired


async def slot_invariant_violations() -> list[dict]:
    """Slots whose remaining places disagree with their holds and bookings (``vetbook check``)."""
    return [dict(row) for row in await sql.fetch(q.SLOT_INVARIANT_VIOLATIONS)]


def _json(value: dict) -> str:
    return json.dumps(value)


# ------------------------------------------------------------------ reads









# ------------------------------------------------------------------ owner pages (my bookings, cancel preview)







def cancellation_preview(actor: CurrentUser, booking: dict, now: datetime | None = None) -> dict:
    """What cancelling ``booking`` now would do, by the same rules as ``cancel``: whether it may be
    cancelled, the policy, and the refund (nothing when nothing was paid)."""
    now = now or _now()
    by_clinic = actor.role != ROLE_OWNER
    paid = booking["payment_status"] == "paid" and booking["final_amount"] > 0
    policy = refund_policy(booking, by_clinic, now) if paid else None
    return {
        "allowed": state.can_transition(booking["status"], state.CANCELLED),
        "paid": paid,
        "policy": policy,
        "refund_amount": refund_amount(booking["final_amount"], policy) if policy else Decimal(0),
        "refund_deadline": booking["start_time"] - timedelta(hours=booking["refund_deadline_hours"]),
    }


# ------------------------------------------------------------------ the clinic's desk (walk-ins, phone bookings)

DESK_SOURCES = ("walk_in", "phone")

def _why_desk_cannot_book(slot: asyncpg.Record, now: datetime) -> str:
    if slot["status"] in ("maintenance", "unavailable"):
        return N_("This slot is blocked. Please choose another time.")
    if slot["start_time"] <= now:
        return N_("This slot has already started. Please choose a later time.")
    if slot["remaining"] <= 0:
        return N_("This slot is full. Please choose another time.")
    return SLOT_JUST_TAKEN


async def book_on_behalf(staff: CurrentUser, owner_id: UUID, pet_id: UUID, slot_id: UUID, source: str,
                         notes: str | None = None) -> dict:
    """A receptionist (or manager) books ``slot_id`` for an owner's pet at the desk: a walk-in or a phone
    booking (``booking_source``). The place is taken by a guarded UPDATE like a hold's; the booking waits
    for payment until the visit starts (the desk takes the money, web/payments/services.start_desk_payment);
    a free service is confirmed at once. One transaction, attributed to ``staff``.

    404 for a slot of a clinic the staff member does not work at; 422 for a pet that is not the owner's or
    an unknown source; 409 (SlotUnavailable) for a full, blocked or started slot, and for a pet that
    already has a visit at that time. Nothing is written then. Joins the caller's transaction if any
    (so that an owner created on the spot is rolled back with a refused booking)."""
    if not staff.is_staff:
        raise NotFound(N_("No such slot."))
    if source not in DESK_SOURCES:
        raise InvalidInput({"source": N_("Choose walk-in or phone.")})
    if notes is not None and len(notes) > 2000:
        raise InvalidInput({"notes": N_("Use at most 2000 characters.")})
    key = await _slot_key(slot_id)
    if not staff.works_at(key.clinic_id):
        raise NotFound(N_("No such slot."))
    slot = await _slot(key)
    clinic_id = key.clinic_id
    async with transaction_as(staff.user_id, reason=source):
        owns = await sql.fetchval(q.PET_OF_OWNER, pet_id, owner_id)
        if not owns:
            raise InvalidInput({"pet_id": N_("This pet does not belong to this owner.")})
        if await sql.fetchval(q.PET_IS_BUSY, clinic_id, pet_id, slot["start_time"], slot["end_time"], None,
                              slot["date"]):
            raise Conflict(PET_ALREADY_BUSY)
        if not await places.take_place(clinic_id, slot_id, slot["date"], with_notice=places.WITHOUT_NOTICE):
            raise SlotUnavailable(_why_desk_cannot_book(slot, _now()))
        price = Decimal(slot["price"] or 0)
        free = price == 0
        booking = await sql.fetchrow(
            q.INSERT_BOOKING,
            clinic_id, shard_keys.new_id_today(clinic_id), None, owner_id, pet_id, slot["service_id"],
            slot["slot_id"], slot["date"], slot["staff_id"], state.CONFIRMED if free else state.PENDING_PAYMENT,
            "paid" if free else "pending", price, Decimal(0), price, slot["currency"],
            (notes or "").strip() or None, source, None if free else slot["start_time"], None, None, None,
            new_booking_code(),
        )
        _announce(booking)
        await places.mark_full_if_no_place_left(clinic_id, slot["slot_id"], slot["date"])
    metrics.BOOKINGS.labels(source).inc()
    return dict(booking)


# ------------------------------------------------------------------ owner pages (a hold's confirm page)



