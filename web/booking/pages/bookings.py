"""The owner's booking pages: my bookings, a booking with its QR code, cancelling and rescheduling.

Plain forms and 303 redirects (they work without JavaScript); every rule is the engine's
(web/booking/services.py). Someone else's booking is "not found".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import segno
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from markupsafe import Markup

from web.accounts.auth import owner_only
from web.booking import queries, services, state
from web.booking.codes import display_booking_code
from web.core import clock
from web.core.errors import Conflict, InvalidInput, NotFound
from web.core.forms import day_or_none, uuid_or_none, version_or_none
from web.core.messages import N_
from web.slots.queries import bookable_slots

FormData = URLEncodedBody[dict[str, Any]]

# How many days the reschedule page's day strip offers.
RESCHEDULE_DAYS = 14

VERSION_CONFLICT = N_("This booking changed while you were looking at it. Here is how it is now: check it "
                      "and try again.")
PICK_A_SLOT = N_("Choose one of the free times in the list.")
SLOT_JUST_TAKEN = N_("Sorry, this slot was just taken. Please choose another time.")


def booking_qr_svg(booking_code: str) -> Markup:
    """The booking code as an inline SVG QR code: a USB scanner at the desk types exactly the code."""
    qr = segno.make_qr(booking_code, error="m")
    svg = qr.svg_inline(scale=6, border=2, dark="#000", light="#fff", omitsize=True)
    return Markup(svg)


def split_upcoming_and_past(bookings: list[dict], now: datetime) -> tuple[list[dict], list[dict]]:
    """Visits still ahead (soonest first) and the rest (most recent first)."""
    upcoming = [b for b in bookings if state.is_upcoming(b, now)]
    ahead = {b["booking_id"] for b in upcoming}
    past = [b for b in bookings if b["booking_id"] not in ahead]
    upcoming.sort(key=lambda b: b["start_time"])
    return upcoming, past


def _page_context(booking: dict) -> dict:
    return {
        "booking": booking,
        "code": display_booking_code(booking["booking_code"]),
        "can_cancel": state.can_transition(booking["status"], state.CANCELLED),
        "can_reschedule": state.can_transition(booking["status"], state.RESCHEDULED),
        "can_pay": state.can_pay(booking),
        # The page says why some times are missing.
        "holds_money": services.refuses_pricier_times(booking),
    }


class BookingPagesController(Controller):
    path = "/bookings"
    guards = [owner_only]
    include_in_schema = False

    @get("/", name="my_bookings")
    async def my_bookings(self, request: Request) -> Template:
        bookings = await queries.owner_bookings(request.user)
        upcoming, past = split_upcoming_and_past(bookings, clock.utc_now())
        return Template("booking/list.html", context={"upcoming": upcoming, "past": past})

    @get("/{booking_id:uuid}", name="booking_page")
    async def booking_page(self, request: Request, booking_id: FromPath[UUID]) -> Template:
        booking = await queries.owner_booking(request.user, booking_id)
        return Template("booking/detail.html", context={
            **_page_context(booking), "qr_svg": booking_qr_svg(booking["booking_code"]),
        })

    # ------------------------------------------------------------------ cancel

    async def _cancel_page(self, request: Request, booking_id: UUID, status: int = 200, error: str | None = None,
                           conflict: str | None = None, errors: dict | None = None,
                           values: dict | None = None) -> Template:
        booking = await queries.owner_booking(request.user, booking_id)
        return Template("booking/cancel.html", status_code=status, context={
            **_page_context(booking),
            "preview": services.cancellation_preview(request.user, booking),
            "reasons": services.CANCELLATION_REASONS,
            "error": error, "conflict": conflict, "errors": errors or {}, "values": values or {},
        })

    @get("/{booking_id:uuid}/cancel", name="booking_cancel_form")
    async def cancel_form(self, request: Request, booking_id: FromPath[UUID]) -> Template:
        return await self._cancel_page(request, booking_id)

    @post("/{booking_id:uuid}/cancel", name="booking_cancel")
    async def cancel(self, request: Request, booking_id: FromPath[UUID], data: FormData) -> Response:
        await queries.owner_booking(request.user, booking_id)  # 404 before anything else
        values = {"reason": data.get("reason") or "", "notes": data.get("notes") or ""}
        version = version_or_none(data.get("version"))
        if version is None:
            return await self._cancel_page(request, booking_id, 422, error=N_("The form is incomplete. Reload the page "
                                                                              "and try again."), values=values)
        try:
            await services.cancel(request.user, booking_id, str(values["reason"]), version,
                                  str(values["notes"]).strip() or None)
        except InvalidInput as exc:
            return await self._cancel_page(request, booking_id, 422, error=exc.detail, errors=exc.field_errors,
                                           values=values)
        except state.StaleVersion:
            return await self._cancel_page(request, booking_id, 409, conflict=VERSION_CONFLICT, values=values)
        except Conflict as exc:
            return await self._cancel_page(request, booking_id, 409, error=exc.detail, values=values)
        return Redirect(path=f"/bookings/{booking_id}", status_code=303)

    # ------------------------------------------------------------------ reschedule

    async def _reschedule_page(self, request: Request, booking_id: UUID, day_text: str | None, status: int = 200,
                               error: str | None = None, conflict: str | None = None) -> Template:
        booking = await queries.owner_booking(request.user, booking_id)
        today = clock.clinic_today(booking["timezone"])
        day, day_error = booking["slot_day"], None
        if booking["slot_day"] < today:
            day = today
        if day_text:
            chosen = day_or_none(day_text)
            if chosen is None:
                day_error, status = N_("Choose a day as YYYY-MM-DD."), 422
            else:
                day = chosen
        slots = []
        if day_error is None and state.can_transition(booking["status"], state.RESCHEDULED):
            # Only the times the engine would accept, each with what the move does to the money.
            for slot in await bookable_slots(booking["clinic_id"], booking["service_id"], day):
                change = services.price_change(booking, Decimal(slot["price"] or 0))
                if slot["slot_id"] != booking["slot_id"] and change.refused is None:
                    slots.append({**slot, "change": change})
        return Template("booking/reschedule.html", status_code=status, context={
            **_page_context(booking), "day": day, "slots": slots, "day_error": day_error,
            "days": [today + timedelta(days=offset) for offset in range(RESCHEDULE_DAYS)],
            "error": error, "conflict": conflict,
        })

    @get("/{booking_id:uuid}/reschedule", name="booking_reschedule_form")
    async def reschedule_form(self, request: Request, booking_id: FromPath[UUID],
                              day: FromQuery[str | None] = None) -> Template:
        return await self._reschedule_page(request, booking_id, day)

    @post("/{booking_id:uuid}/reschedule", name="booking_reschedule")
    async def reschedule(self, request: Request, booking_id: FromPath[UUID], data: FormData) -> Response:
        await queries.owner_booking(request.user, booking_id)  # 404 before anything else
        day = str(data.get("day") or "") or None
        slot_id, version = uuid_or_none(data.get("slot_id")), version_or_none(data.get("version"))
        if slot_id is None or version is None:
            return await self._reschedule_page(request, booking_id, day, 422, error=PICK_A_SLOT)
        try:
            moved = await services.reschedule(request.user, booking_id, slot_id, version)
        except services.SlotUnavailable as exc:
            # The engine's words, as a message the page can translate when it is the usual one.
            just_taken = exc.detail == services.SLOT_JUST_TAKEN
            return await self._reschedule_page(request, booking_id, day, 409,
                                               error=SLOT_JUST_TAKEN if just_taken else exc.detail)
        except NotFound:
            # The booking is the owner's (read above): what is missing is the slot.
            return await self._reschedule_page(request, booking_id, day, 422, error=PICK_A_SLOT)
        except InvalidInput as exc:
            return await self._reschedule_page(request, booking_id, day, 422,
                                               error=next(iter(exc.field_errors.values()), exc.detail))
        except state.StaleVersion:
            return await self._reschedule_page(request, booking_id, day, 409, conflict=VERSION_CONFLICT)
        except Conflict as exc:
            return await self._reschedule_page(request, booking_id, day, 409, error=exc.detail)
        return Redirect(path=f"/bookings/{moved['booking_id']}", status_code=303)
