"""HTML pages of the owner's slot finder: choose a clinic, a service and a day, see the week's availability
and the day's free slots (live), hold one, or add a pet on the way.

Thin: parse the query, call the services (web/slots/queries.py, web/clinics/services.py, the booking
engine), render. The same URL renders the whole page (no JavaScript, reload, a shared link) or, for an
HTMX request aimed at ``#finder``, only the finder part.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.params import FromQuery, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect, HTMXRequest, HTMXTemplate
from litestar.response import Redirect, Template

from web.accounts import services as account_services
from web.accounts.auth import ROLE_OWNER, owner_only
from web.accounts.validation import SPECIES
from web.booking import services as booking_services
from web.clinics import services as clinic_services
from web.core import clock
from web.core.errors import DomainError, InvalidInput, NotFound
from web.core.forms import day_or_none, uuid_or_none
from web.core.messages import N_
from web.slots import queries as slot_queries

FormData = URLEncodedBody[dict[str, Any]]
WEEK_DAYS = 7
# How far ahead the finder looks (the slots are generated a few weeks ahead; a year is plenty).
MAX_DAYS_AHEAD = 366
# One URL answers a whole page or (HTMX) a part of it: caches must keep them apart.
VARY_ON_HTMX = {"Vary": "HX-Request, HX-Target"}


def _parse_uuid(value: object, field: str) -> UUID | None:
    if value is None or value == "":
        return None
    parsed = uuid_or_none(value)
    if parsed is None:
        raise InvalidInput({field: N_("This choice is not valid. Pick one from the list.")},
                           detail=N_("This choice is not valid. Pick one from the list."))
    return parsed


def _parse_day(value: object) -> date | None:
    if value is None or value == "":
        return None
    day = day_or_none(value)
    if day is None:
        raise InvalidInput({"date": N_("Give the day as YYYY-MM-DD, e.g. 2026-12-01.")},
                           detail=N_("Give the day as YYYY-MM-DD, e.g. 2026-12-01."))
    return day


def finder_url(clinic_id: object = None, service_id: object = None, day: date | None = None,
               pet_id: object = None) -> str:
    """The finder's address for these choices (what back, reload and the "try again" links use)."""
    params = {key: str(value) for key, value in (
        ("clinic", clinic_id), ("service", service_id), ("date", day.isoformat() if day else None), ("pet", pet_id),
    ) if value}
    return "/book" + ("?" + urlencode(params) if params else "")


def _slot_list_url(clinic_id: UUID, service_id: UUID, day: date, pet_id: UUID | None) -> str:
    return finder_url(clinic_id, service_id, day, pet_id).replace("/book?", "/book/slots?", 1)


async def _pick(request: Request, clinic: object, service: object, day: object, pet: object) -> dict:
    """The finder's choices, with sensible defaults: the first clinic, its first service, the clinic's
    today, the owner's first pet. A service or pet that does not fit (another clinic's service after the
    clinic changed) falls back to the default; an unknown clinic is a 404."""
    clinic_id, service_id = _parse_uuid(clinic, "clinic"), _parse_uuid(service, "service")
    wanted_day, pet_id = _parse_day(day), _parse_uuid(pet, "pet")
    clinics = await clinic_services.list_clinics()
    chosen_clinic = next((c for c in clinics if c["clinic_id"] == clinic_id), None) if clinic_id else (
        clinics[0] if clinics else None)
    if clinic_id and chosen_clinic is None:
        raise NotFound(N_("No such clinic."))
    services = await clinic_services.list_active_services(chosen_clinic["clinic_id"]) if chosen_clinic else []
    chosen_service = next((s for s in services if s["service_id"] == service_id), services[0] if services else None)
    user = request.scope.get("user")
    pets = await account_services.list_pets(user) if user is not None and user.role == ROLE_OWNER else []
    chosen_pet = next((p for p in pets if p["pet_id"] == pet_id), pets[0] if pets else None)
    today = clock.clinic_today(chosen_clinic["timezone"] if chosen_clinic else clock.PLATFORM_ZONE)
    chosen_day = min(max(wanted_day or today, today), today + timedelta(days=MAX_DAYS_AHEAD))
    return {"clinics": clinics, "clinic": chosen_clinic, "services": services, "service": chosen_service,
            "pets": pets, "pet": chosen_pet, "today": today, "day": chosen_day, "user": user}


async def _slot_list_context(choices: dict) -> dict:
    clinic, service, pet = choices["clinic"], choices["service"], choices["pet"]
    slots = await slot_queries.bookable_slots(clinic["clinic_id"], service["service_id"], choices["day"]) \
        if clinic and service else []
    return {
        "slots": slots,
        "slot_list_url": _slot_list_url(clinic["clinic_id"], service["service_id"], choices["day"],
                                         pet["pet_id"] if pet else None) if clinic and service else None,
    }


async def finder_context(request: Request, clinic: object = None, service: object = None, day: object = None,
                         pet: object = None, **extra: Any) -> dict:
    """Everything the finder page shows for these choices (also used to re-render it after a failed hold)."""
    choices = await _pick(request, clinic, service, day, pet)
    clinic_row, service_row, pet_row = choices["clinic"], choices["service"], choices["pet"]
    today, chosen_day = choices["today"], choices["day"]
    # Weeks start at the clinic's today, so the strip never shows days already past.
    week_start = today + timedelta(days=WEEK_DAYS * ((chosen_day - today).days // WEEK_DAYS))
    week_end = week_start + timedelta(days=WEEK_DAYS - 1)
    places = {}
    if clinic_row and service_row:
        places = await slot_queries.bookable_places_per_day(
            clinic_row["clinic_id"], service_row["service_id"], week_start, week_end)
    ids = (clinic_row["clinic_id"] if clinic_row else None, service_row["service_id"] if service_row else None)
    pet_id = pet_row["pet_id"] if pet_row else None
    week = [{"day": day_, "url": finder_url(*ids, day_, pet_id), "chosen": day_ == chosen_day,
             **places.get(day_, {"slots": 0, "places": 0})}
            for day_ in (week_start + timedelta(days=offset) for offset in range(WEEK_DAYS))]
    previous_week = week_start - timedelta(days=WEEK_DAYS)
    next_week = week_start + timedelta(days=WEEK_DAYS)
    here = finder_url(*ids, chosen_day, pet_id)
    return {
        **choices,
        **await _slot_list_context(choices),
        "week": week,
        "previous_week_url": finder_url(*ids, previous_week, pet_id) if previous_week >= today else None,
        "next_week_url": finder_url(*ids, next_week, pet_id),
        "finder_url": here,
        "login_url": "/login?next=" + quote(here, safe=""),
        "species": SPECIES,
        "pet_values": {}, "pet_errors": {},
        "hold_failure": None,
        **extra,
    }


async def _slot_place_or_none(value: object) -> dict | None:
    try:
        slot_id = _parse_uuid(value, "slot_id")
    except InvalidInput:
        return None
    return await slot_queries.slot_place(slot_id) if slot_id else None


def _wants_fragment(request: HTMXRequest, target: str) -> bool:
    htmx = request.htmx
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


class SlotFinderController(Controller):
    path = "/book"
    include_in_schema = False

    @get("/", name="book")
    async def finder(self, request: HTMXRequest, clinic: FromQuery[str | None] = None,
                     service: FromQuery[str | None] = None, date: FromQuery[str | None] = None,
                     pet: FromQuery[str | None] = None) -> Template:
        """The slot finder; ``#finder`` alone for HTMX (the URL is pushed, so back and reload work)."""
        context = await finder_context(request, clinic, service, date, pet)
        if _wants_fragment(request, "finder"):
            return HTMXTemplate(template_name="booking/_finder.html", context=context, headers=VARY_ON_HTMX)
        return Template("booking/finder.html", context=context, headers=VARY_ON_HTMX)

    @get("/slots", name="book_slots")
    async def slot_list(self, request: HTMXRequest, clinic: FromQuery[str | None] = None,
                        service: FromQuery[str | None] = None, date: FromQuery[str | None] = None,
                        pet: FromQuery[str | None] = None) -> Template:
        """The day's free slots alone: what the live list refetches on ``sse:slots-changed``."""
        choices = await _pick(request, clinic, service, date, pet)
        if choices["clinic"] is None or choices["service"] is None:
            raise NotFound(N_("This clinic has no bookable services yet."))
        context = {**choices, **await _slot_list_context(choices), "refreshed": True}
        context["login_url"] = "/login?next=" + quote(
            finder_url(choices["clinic"]["clinic_id"] if choices["clinic"] else None,
                       choices["service"]["service_id"] if choices["service"] else None, choices["day"],
                       choices["pet"]["pet_id"] if choices["pet"] else None), safe="")
        return Template("booking/_slot_list.html", context=context)

    @post("/hold", name="book_hold", status_code=200)
    async def hold(self, request: HTMXRequest, data: FormData) -> Response:
        """Hold a place of the clicked slot and go to the confirm page; if the slot was taken a moment
        earlier, say so and offer the nearest free slots."""
        user = request.scope.get("user")
        if user is None:
            # Holding needs an account: log in, then come back to the finder on this slot's day.
            place = await _slot_place_or_none(data.get("slot_id"))
            back = finder_url(place["clinic_id"], place["service_id"], place["date"]) if place else "/book"
            target = "/login?next=" + quote(back, safe="")
            return ClientRedirect(target) if request.htmx else Redirect(path=target, status_code=303)
        if user.role != ROLE_OWNER:
            raise DomainError(N_("Only pet owners can book a visit here."), status=403)
        slot_id = _parse_uuid(data.get("slot_id"), "slot_id")
        pet_id = _parse_uuid(data.get("pet_id"), "pet_id")
        if slot_id is None:
            raise InvalidInput({"slot_id": N_("Choose a time.")}, detail=N_("Choose a time."))
        place = await slot_queries.slot_place(slot_id)
        if place is None:
            raise NotFound(N_("No such slot."))
        if pet_id is None:
            raise InvalidInput({"pet_id": N_("Add your pet first.")}, detail=N_("Add your pet first."))
        failure = None
        try:
            reservation = await booking_services.hold(user, slot_id, pet_id, data.get("idempotency_key") or None)
        except booking_services.SlotUnavailable as exc:
            failure = {"taken": True, "message": exc.detail, "status": 409}
        except TooManyRequestsException as exc:
            failure = {"taken": False, "message": exc.detail, "status": 429}
        except DomainError as exc:
            if exc.status not in (403, 409):
                raise
            failure = {"taken": False, "message": exc.detail, "status": exc.status}
        if failure is None:
            target = f"/reservations/{reservation['reservation_id']}"
            return ClientRedirect(target) if request.htmx else Redirect(path=target, status_code=303)
        failure["nearest"] = await slot_queries.nearest_free_slots(slot_id) if failure["taken"] else []
        context = await finder_context(request, place["clinic_id"], place["service_id"], place["date"], pet_id,
                                       hold_failure=failure)
        if request.htmx:
            # htmx 2 swaps no 4xx: answer 200; the form targets #hold-feedback itself (see _hold_form.html).
            return HTMXTemplate(template_name="booking/_hold_feedback.html", context=context)
        return Template("booking/finder.html", context=context, status_code=failure["status"])

    @post("/pet", name="book_add_pet", guards=[owner_only])
    async def add_pet(self, request: Request, data: FormData) -> Response:
        """The finder's inline "add your pet": save it, and come back to the same choices with it picked."""
        try:
            pet = await account_services.add_pet(request.user, data)
        except InvalidInput as exc:
            context = await finder_context(
                request, data.get("clinic"), data.get("service"), data.get("date"), None,
                pet_values={key: data.get(key, "") for key in ("name", "species")}, pet_errors=exc.field_errors)
            return Template("booking/finder.html", context=context, status_code=422)
        choices = await _pick(request, data.get("clinic"), data.get("service"), data.get("date"), pet["pet_id"])
        target = finder_url(choices["clinic"]["clinic_id"] if choices["clinic"] else None,
                            choices["service"]["service_id"] if choices["service"] else None,
                            choices["day"], pet["pet_id"])
        return Redirect(path=target, status_code=303)
