"""HTML pages of the clinic's desk (receptionists and managers): the day view, check-in by code, the desk's
booking page (check in, complete, no-show, take payment) and walk-in / phone bookings.

Thin: parse, call web/desk/services.py or the engine, render. Forms post without JavaScript and answer
with a 303 (POST/redirect/GET); a refused change re-renders its page with the reason and the current state.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts.auth import CurrentUser, staff_only
from web.accounts.validation import SPECIES
from web.booking import services as engine
from web.booking import state
from web.booking.codes import display_booking_code
from web.clinics import services as clinic_services
from web.core import clock
from web.core.errors import Conflict, InvalidInput, NotFound
from web.core.forms import uuid_or_none, version_or_none
from web.core.messages import N_
from web.desk import services
from web.payments import services as payments

FormData = URLEncodedBody[dict[str, Any]]
ClinicParam = Annotated[str | None, QueryParameter(name="clinic", required=False, max_length=64)]
DayParam = Annotated[str | None, QueryParameter(name="date", required=False, max_length=32)]

# What the booking page says after a change (``?done=``).
DONE_MESSAGES = {
    "checked_in": N_("Checked in."),
    "completed": N_("The visit is completed."),
    "no_show": N_("Marked as a no-show."),
    "paid": N_("Payment received at the desk."),
    "booked": N_("Booked. Take the payment now, or when the pet arrives."),
}
TRANSITIONS = {
    "check-in": (engine.check_in, "checked_in"),
    "complete": (engine.complete, "completed"),
    "no-show": (engine.mark_no_show, "no_show"),
}


def _day_url(clinic_id: object, day: date, path: str = "/desk") -> str:
    return f"{path}?{urlencode({'clinic': str(clinic_id), 'date': day.isoformat()})}"


async def _clinic_and_day(user: CurrentUser, clinic: str | None, day: str | None) -> tuple[list[dict], dict, date]:
    clinics = await clinic_services.clinics_for(user)
    chosen = services.choose_clinic(clinics, clinic)
    return clinics, chosen, services.parse_day(day, chosen)


async def _grid_context(user: CurrentUser, clinic: str | None, day: str | None) -> dict:
    clinics, chosen, the_day = await _clinic_and_day(user, clinic, day)
    today = clock.clinic_today(chosen["timezone"])
    return {
        "clinics": clinics, "clinic": chosen, "day": the_day, "today": today, "is_today": the_day == today,
        "grid": await services.day_grid(chosen, the_day),
        "previous_url": _day_url(chosen["clinic_id"], the_day - timedelta(days=1)),
        "next_url": _day_url(chosen["clinic_id"], the_day + timedelta(days=1)),
        "today_url": _day_url(chosen["clinic_id"], today),
        "grid_url": _day_url(chosen["clinic_id"], the_day, "/desk/grid"),
        "book_url": _day_url(chosen["clinic_id"], the_day, "/desk/book"),
        "display_code": display_booking_code,
    }


def _version(data: dict) -> int:
    version = version_or_none(data.get("version"))
    if version is None:
        raise InvalidInput({"version": N_("Reload the page and try again.")}, detail=N_("Reload the page and try again."))
    return version


class DeskPagesController(Controller):
    path = "/desk"
    guards = [staff_only]
    include_in_schema = False

    # ------------------------------------------------------------------ the day view

    @get("/", name="desk_day")
    async def day_view(self, request: Request, clinic: ClinicParam = None, day: DayParam = None) -> Template:
        return Template("desk/day.html", context=await _grid_context(request.user, clinic, day))

    @get("/grid", name="desk_grid")
    async def grid(self, request: Request, clinic: ClinicParam = None, day: DayParam = None) -> Template:
        """The grid alone: what the day view refetches when its clinic day changes."""
        return Template("desk/_grid.html", context=await _grid_context(request.user, clinic, day))

    # ------------------------------------------------------------------ check-in by code

    @get("/bookings", name="desk_lookup")
    async def lookup(self, request: Request, code: Annotated[str | None, QueryParameter(max_length=64)] = None) -> Response:
        """Find a booking by its code (typed, or sent by a USB scanner that types it and presses Enter)."""
        context: dict = {"code": code or "", "matches": [], "error": None, "display_code": display_booking_code}
        try:
            matches = await services.find_by_code(request.user, code)
        except InvalidInput as exc:
            return Template("desk/lookup.html", context={**context, "error": exc.detail}, status_code=422)
        if len(matches) == 1:
            return Redirect(path=f"/desk/bookings/{matches[0]['booking_id']}", status_code=303)
        if not matches:
            error = N_("No booking at your clinic has the code %(code)s. Check the code and try again.",
                       code=(code or "").strip().upper())
            return Template("desk/lookup.html", context={**context, "error": error}, status_code=404)
        return Template("desk/lookup.html", context={**context, "matches": matches})

    # ------------------------------------------------------------------ the desk's booking page

    async def _booking_page(self, user: CurrentUser, booking_id: UUID, error: str | None = None,
                            done: str | None = None, status: int = 200) -> Template:
        booking = await services.desk_booking(user, booking_id)
        now = clock.utc_now()
        return Template("desk/booking.html", status_code=status, context={
            "booking": booking, "error": error, "done": DONE_MESSAGES.get(done or ""),
            "display_code": display_booking_code,
            "can_check_in": state.can_transition(booking["status"], state.IN_PROGRESS),
            "can_complete": state.can_transition(booking["status"], state.COMPLETED),
            "can_no_show": state.can_mark_no_show(booking, now),
            "no_show_later": state.no_show_possible_later(booking, now),
            "can_pay": state.can_pay(booking),
            "day_url": _day_url(booking["clinic_id"], booking["slot_date"]),
        })

    @get("/bookings/{booking_id:uuid}", name="desk_booking")
    async def booking(self, request: Request, booking_id: FromPath[UUID],
                      done: Annotated[str | None, QueryParameter(max_length=20)] = None) -> Template:
        return await self._booking_page(request.user, booking_id, done=done)

    async def _transition(self, request: Request, booking_id: UUID, data: dict, action: str) -> Response:
        change, done = TRANSITIONS[action]
        version = _version(data)
        try:
            await change(request.user, booking_id, version)
        except Conflict as exc:
            return await self._booking_page(request.user, booking_id, error=exc.detail, status=409)
        return Redirect(path=f"/desk/bookings/{booking_id}?done={done}", status_code=303)

    @post("/bookings/{booking_id:uuid}/check-in", name="desk_check_in")
    async def check_in(self, request: Request, booking_id: FromPath[UUID], data: FormData) -> Response:
        return await self._transition(request, booking_id, data, "check-in")

    @post("/bookings/{booking_id:uuid}/complete", name="desk_complete")
    async def complete(self, request: Request, booking_id: FromPath[UUID], data: FormData) -> Response:
        return await self._transition(request, booking_id, data, "complete")

    @post("/bookings/{booking_id:uuid}/no-show", name="desk_no_show")
    async def no_show(self, request: Request, booking_id: FromPath[UUID], data: FormData) -> Response:
        return await self._transition(request, booking_id, data, "no-show")

    @post("/bookings/{booking_id:uuid}/payment", name="desk_payment")
    async def take_payment(self, request: Request, booking_id: FromPath[UUID], data: FormData) -> Response:
        """The money was taken at the desk: the booking's `clinic` payment (started now if needed) is paid."""
        try:
            await payments.take_payment_at_desk(request.user, booking_id)
        except Conflict as exc:
            return await self._booking_page(request.user, booking_id, error=exc.detail, status=409)
        return Redirect(path=f"/desk/bookings/{booking_id}?done=paid", status_code=303)

    # ------------------------------------------------------------------ walk-ins and phone bookings

    async def _book_page(self, user: CurrentUser, clinic: str | None, day: str | None, query: str | None,
                         owner_id: str | None, values: dict, errors: dict, error: str | None = None,
                         status: int = 200) -> Template:
        clinics, chosen, the_day = await _clinic_and_day(user, clinic, day)
        owner, search, headers = None, services.OwnerSearch(), None
        if owner_id:
            wanted = uuid_or_none(owner_id)
            if wanted is None:
                raise NotFound(N_("No such owner."))
            owner = await services.open_owner(user, chosen, wanted)
        if query:
            try:
                search = await services.find_owners(user, chosen, query)
            except TooManyRequestsException as exc:
                search, status, headers = services.OwnerSearch(problem=exc.detail), 429, exc.headers
        return Template("desk/book.html", status_code=status, headers=headers, context={
            "clinics": clinics, "clinic": chosen, "day": the_day, "query": query or "",
            "owners": search.owners, "search_problem": search.problem,
            "searched": bool(query), "owner": owner, "slots": await services.free_slots(chosen, the_day),
            "species": SPECIES, "values": values, "errors": errors, "error": error,
            "day_url": _day_url(chosen["clinic_id"], the_day),
        })

    @get("/book", name="desk_book")
    async def book_form(self, request: Request, clinic: ClinicParam = None, day: DayParam = None,
                        q: Annotated[str | None, QueryParameter(max_length=254)] = None,
                        owner_id: Annotated[str | None, QueryParameter(max_length=64)] = None) -> Template:
        return await self._book_page(request.user, clinic, day, q, owner_id, {"source": "walk_in"}, {})

    @post("/book", name="desk_book_submit")
    async def book(self, request: Request, data: FormData) -> Response:
        clinic, day, owner_id = data.get("clinic"), data.get("date"), data.get("owner_id")
        try:
            booking = await services.book_at_desk(request.user, data)
        except InvalidInput as exc:
            # An owner the desk may not book for is not shown again: the form starts from the search.
            shown_owner = None if "owner_id" in exc.field_errors else owner_id
            return await self._book_page(request.user, clinic, day, None, shown_owner, data, exc.field_errors,
                                         error=exc.detail, status=422)
        except Conflict as exc:
            return await self._book_page(request.user, clinic, day, None, owner_id, data, {},
                                         error=exc.detail, status=409)
        return Redirect(path=f"/desk/bookings/{booking['booking_id']}?done=booked", status_code=303)
