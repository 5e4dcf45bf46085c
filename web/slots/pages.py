"""HTML pages of the desk's slot management (receptionists of the clinic, managers of it): the list of a
clinic's slots with blocking and unblocking, generation from a weekly template, and the clinic-initiated
"cancel these bookings and block" path. Thin: parse the form, call web/slots/generation.py, render or
redirect (303, so every page works without JavaScript).

The clinic is the ``clinic`` query parameter (the desk's day view uses the same name); without it, the
person's own clinic. A clinic the person does not work at is "not found".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date, time, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts.auth import CurrentUser, staff_only
from web.core import clock
from web.core.errors import InvalidInput, NotFound
from web.core.forms import day_or_none, parse_price, uuid_or_none
from web.core.messages import N_, Message
from web.slots import blocking, generation, queries
from web.slots.blocking import BLOCK_REASONS, SlotsHaveBookings
from web.slots.generation import SlotTemplate, StaffOverlap

FormData = URLEncodedBody[dict[str, Any]]

WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
            N_("Sunday"))
REASON_NAMES = {"maintenance": N_("Maintenance"), "leave": N_("Staff on leave")}
# The notices a redirect back to the list may ask for, with the counts they show.
NOTICES = ("generated", "blocked", "unblocked", "cancelled")
LIST_DAYS = 7


# ------------------------------------------------------------------ parsing


def _text(data: Any, name: str) -> str:
    value = data.get(name) if data is not None else None
    if isinstance(value, list):
        value = value[-1] if value else None
    return str(value).strip()[:200] if value is not None else ""


def _list(data: Any, name: str) -> list[str]:
    value = data.get(name) if data is not None else None
    if value is None:
        return []
    return [str(item) for item in (value if isinstance(value, list) else [value])]


def _day(text: str) -> date | None:
    return day_or_none(text)


def _field(data: Any, name: str, errors: dict, parse: Callable[[str], Any], problem: Message) -> Any:
    """The field parsed, or None; a filled-in field that does not parse is an error of that field."""
    text = _text(data, name)
    value = parse(text)
    if text and value is None:
        errors[name] = problem
    return value


def _optional_uuid(data: Any, name: str, errors: dict) -> UUID | None:
    return _field(data, name, errors, uuid_or_none, N_("Choose one from the list."))


def _required_day(data: Any, name: str, errors: dict) -> date | None:
    return _field(data, name, errors, _day, N_("Give a date like 2026-12-31."))


async def _clinic_id(user: CurrentUser, request: Request, data: Any = None) -> UUID:
    """The clinic asked for (query, else form), else the person's own; a malformed id is "not found"."""
    text = request.query_params.get("clinic") or _text(data, "clinic")
    if text:
        clinic_id = uuid_or_none(text)
        if clinic_id is None:
            raise NotFound(N_("No such clinic."))
        return clinic_id
    clinic_id = await queries.default_clinic_id(user)
    if clinic_id is None:
        raise NotFound(N_("No such clinic."))
    return clinic_id


def _list_url(clinic_id: UUID, first_day: date | None = None, last_day: date | None = None, **extra: Any) -> str:
    query: dict[str, str] = {"clinic": str(clinic_id)}
    if first_day:
        query["from"] = first_day.isoformat()
    if last_day:
        query["to"] = last_day.isoformat()
    query.update({key: str(value) for key, value in extra.items() if value is not None})
    return "/desk/slots?" + urlencode(query)


def _count(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 7 else 0


def _selection(data: Any, errors: dict) -> dict:
    """Chosen slots (checkboxes ``slot_id``) or, without any, a range of days with optional filters."""
    slot_ids = []
    for text in _list(data, "slot_id"):
        slot_id = uuid_or_none(text.strip())
        if slot_id is None:
            errors["slot_ids"] = N_("Choose slots from the list.")
        else:
            slot_ids.append(slot_id)
    if slot_ids:
        return {"slot_ids": slot_ids}
    return {"first_day": _required_day(data, "first_day", errors),
            "last_day": _required_day(data, "last_day", errors),
            "staff_id": _optional_uuid(data, "staff_id", errors),
            "service_id": _optional_uuid(data, "service_id", errors)}


def _selection_fields(selection: dict) -> list[tuple[str, str]]:
    """The selection as hidden form fields (the cancel-and-block confirmation posts it again)."""
    if selection.get("slot_ids"):
        return [("slot_id", str(slot_id)) for slot_id in selection["slot_ids"]]
    names = {"first_day": "first_day", "last_day": "last_day", "staff_id": "staff_id", "service_id": "service_id"}
    return [(name, str(selection[key])) for key, name in names.items() if selection.get(key)]


# ------------------------------------------------------------------ the pages


class SlotAdminPagesController(Controller):
    path = "/desk/slots"
    guards = [staff_only]
    include_in_schema = False

    async def _list_page(self, request: Request, clinic_id: UUID, first_day: date | None, last_day: date | None,
                         error: str | None = None, errors: dict | None = None, status: int = 200,
                         range_values: dict | None = None) -> Template:
        user: CurrentUser = request.user
        choices = await queries.clinic_choices(user, clinic_id)
        zone = choices["clinic"]["timezone"]
        today = clock.clinic_today(zone)
        first_day = first_day or today
        last_day = last_day if last_day and last_day >= first_day else first_day + timedelta(days=LIST_DAYS - 1)
        last_day = min(last_day, first_day + timedelta(days=generation.MAX_RANGE_DAYS - 1))
        query = request.query_params
        staff_id, service_id = uuid_or_none(query.get("staff") or ""), uuid_or_none(query.get("service") or "")
        slots = await queries.clinic_slots(user, clinic_id, first_day, last_day, staff_id, service_id)
        done = query.get("done")
        notice = None
        if done in NOTICES:
            notice = {"kind": done, **{key: _count(query.get(key)) for key in
                                       ("created", "existing", "past", "changed", "unchanged", "started",
                                        "cancelled", "holds")}}
        return Template("slots/list.html", status_code=status, context={
            **choices, "zone": zone, "today": today, "first_day": first_day, "last_day": last_day,
            "staff_filter": staff_id, "service_filter": service_id, "slots": slots, "notice": notice,
            "error": error, "errors": errors or {}, "reasons": REASON_NAMES,
            "max_listed": queries.MAX_LISTED_SLOTS,
            "range_values": range_values or {"first_day": first_day.isoformat(), "last_day": last_day.isoformat()},
        })

    @get("/", name="desk_slots")
    async def slot_list(self, request: Request) -> Template:
        clinic_id = await _clinic_id(request.user, request)
        query = request.query_params
        return await self._list_page(request, clinic_id, _day(query.get("from") or ""), _day(query.get("to") or ""))

    # ---------------------------------------------------------- generation

    async def _generate_page(self, request: Request, clinic_id: UUID, values: dict, errors: dict,
                             error: str | None = None, clashes: list | None = None, status: int = 200) -> Template:
        choices = await queries.clinic_choices(request.user, clinic_id)
        return Template("slots/generate.html", status_code=status, context={
            **choices, "values": values, "errors": errors, "error": error, "clashes": clashes or [],
            "weekday_names": WEEKDAYS, "zone": choices["clinic"]["timezone"],
        })

    @get("/generate", name="desk_slots_generate_form")
    async def generate_form(self, request: Request) -> Template:
        clinic_id = await _clinic_id(request.user, request)
        choices = await queries.clinic_choices(request.user, clinic_id)
        tomorrow = clock.clinic_today(choices["clinic"]["timezone"]) + timedelta(days=1)
        values = {"weekday": ["0", "1", "2", "3", "4"], "opening": "09:00", "closing": "17:00", "capacity": "1",
                  "first_day": tomorrow.isoformat(), "last_day": (tomorrow + timedelta(days=6)).isoformat()}
        return await self._generate_page(request, clinic_id, values, {})

    @post("/generate", name="desk_slots_generate")
    async def generate(self, request: Request, data: FormData) -> Response:
        clinic_id = await _clinic_id(request.user, request, data)
        errors: dict = {}
        weekdays = set()
        for text in _list(data, "weekday"):
            if text.isdigit() and int(text) < 7:
                weekdays.add(int(text))
            else:
                errors["weekdays"] = N_("Weekdays are 0 (Monday) to 6 (Sunday).")
        times = {}
        for name in ("opening", "closing"):
            try:
                times[name] = time.fromisoformat(_text(data, name)) if _text(data, name) else None
            except ValueError:
                times[name] = None
                errors[name] = N_("Give a time like 09:00.")
            if times[name] is None and name not in errors:
                errors[name] = N_("Give a time like 09:00.")
        numbers = {}
        for name, default in (("length_minutes", None), ("capacity", 1)):
            text = _text(data, name)
            if not text:
                numbers[name] = default
            elif text.isdigit() and len(text) < 6:
                numbers[name] = int(text)
            else:
                errors[name] = N_("Give a whole number.")
        try:
            price = parse_price(_text(data, "price"))
        except ValueError:
            price, errors["price"] = None, N_("Give the price in whole rupiah, e.g. 150000.")
        service_id = _optional_uuid(data, "service_id", errors)
        staff_id = _optional_uuid(data, "staff_id", errors)
        first_day = _required_day(data, "first_day", errors)
        last_day = _required_day(data, "last_day", errors)
        values = {name: _text(data, name) for name in ("opening", "closing", "length_minutes", "capacity", "price",
                                                       "service_id", "staff_id", "first_day", "last_day")}
        values["weekday"] = _list(data, "weekday")
        try:
            if errors:
                raise InvalidInput(errors)
            if service_id is None:
                raise InvalidInput({"service_id": N_("Choose a service of this clinic.")})
            template = SlotTemplate(
                weekdays=frozenset(weekdays), opening=times["opening"], closing=times["closing"],
                service_id=service_id, staff_id=staff_id, length_minutes=numbers["length_minutes"],
                capacity=numbers["capacity"], price=price,
            )
            result = await generation.generate_slots(request.user, clinic_id, template, first_day, last_day)
        except InvalidInput as exc:
            return await self._generate_page(request, clinic_id, values, {**errors, **exc.field_errors},
                                             error=exc.detail, status=422)
        except StaffOverlap as exc:
            return await self._generate_page(request, clinic_id, values, {}, error=exc.detail,
                                             clashes=exc.clashes, status=409)
        return Redirect(path=_list_url(clinic_id, first_day, last_day, done="generated", created=result.created,
                                       existing=result.existing, past=result.skipped_past), status_code=303)

    # ---------------------------------------------------------- blocking

    async def _block_action(self, request: Request, data: Any, action: str) -> Response:
        clinic_id = await _clinic_id(request.user, request, data)
        errors: dict = {}
        selection = _selection(data, errors)
        reason = _text(data, "reason") or "maintenance"
        back = {"from": _day(_text(data, "from")), "to": _day(_text(data, "to"))}
        try:
            if errors:
                raise InvalidInput(errors)
            if action == "unblock":
                result = await blocking.unblock_slots(request.user, clinic_id, **selection)
            elif action == "cancel":
                result = await blocking.cancel_bookings_and_block(request.user, clinic_id, reason=reason,
                                                                    **selection)
            else:
                result = await blocking.block_slots(request.user, clinic_id, reason=reason, **selection)
        except InvalidInput as exc:
            range_values = {name: _text(data, name) for name in ("first_day", "last_day", "staff_id", "service_id")}
            return await self._list_page(request, clinic_id, back["from"], back["to"], error=exc.detail,
                                         errors={**errors, **exc.field_errors}, status=422,
                                         range_values=range_values)
        except SlotsHaveBookings as exc:
            choices = await queries.clinic_choices(request.user, clinic_id)
            return Template("slots/confirm_cancel.html", status_code=409, context={
                **choices, "zone": choices["clinic"]["timezone"], "detail": exc.detail,
                "bookings": [asdict(booking) for booking in exc.bookings], "holds": exc.holds,
                "cancellable": exc.cancellable, "hidden_fields": _selection_fields(selection),
                "reason": reason if reason in BLOCK_REASONS else "maintenance", "reasons": REASON_NAMES,
                "back_url": _list_url(clinic_id, back["from"], back["to"]),
                "back_from": back["from"], "back_to": back["to"],
            })
        done = "unblocked" if action == "unblock" else ("cancelled" if action == "cancel" else "blocked")
        return Redirect(path=_list_url(
            clinic_id, back["from"], back["to"], done=done, changed=result.changed, unchanged=result.unchanged,
            started=result.skipped_started, cancelled=len(result.cancelled_bookings), holds=result.released_holds,
        ), status_code=303)

    @post("/block", name="desk_slots_block")
    async def block(self, request: Request, data: FormData) -> Response:
        return await self._block_action(request, data, "block")

    @post("/unblock", name="desk_slots_unblock")
    async def unblock(self, request: Request, data: FormData) -> Response:
        return await self._block_action(request, data, "unblock")

    @post("/cancel-and-block", name="desk_slots_cancel_and_block")
    async def cancel_and_block(self, request: Request, data: FormData) -> Response:
        """The clinic-initiated path: cancel the slots' bookings (full refund), release holds, block."""
        return await self._block_action(request, data, "cancel")
