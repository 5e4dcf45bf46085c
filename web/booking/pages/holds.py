"""HTML pages of a hold: the confirm page (countdown, pet, notes, price), confirming it, releasing it.

Thin: every rule is the engine's (web/booking/services.py). The hold's lock token travels in a hidden field
of the confirm form: it is unguessable and proves that the confirmation comes from this hold's page.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts.auth import owner_only
from web.booking import queries, services, state
from web.booking.pages.finder import finder_url
from web.core import clock
from web.core.errors import Conflict, Gone, InvalidInput

FormData = URLEncodedBody[dict[str, Any]]
MAX_NOTES = 2000


def _pay_url(booking_id: object) -> str:
    return f"/bookings/{booking_id}/pay"


def _page(reservation: dict, *, message: str | None = None, notes: str = "", errors: dict | None = None,
          status: int = 200) -> Template:
    now = clock.utc_now()
    seconds_left = max(0, int((reservation["expires_at"] - now).total_seconds()))
    return Template("booking/reservation.html", status_code=status, context={
        "reservation": reservation,
        "live": state.is_live_hold(reservation, now),
        "released": state.is_released_hold(reservation),
        "seconds_left": seconds_left,
        # Rounded up: "1 minute" until the very last second, never "0 minutes" while it still holds.
        "minutes_left": (seconds_left + 59) // 60,
        "try_again_url": finder_url(reservation["clinic_id"], reservation["service_id"], reservation["slot_date"],
                                    reservation["pet_id"]),
        "message": message,
        "notes": notes,
        "errors": errors or {},
        "max_notes": MAX_NOTES,
    })


class ReservationPagesController(Controller):
    path = "/reservations"
    guards = [owner_only]
    include_in_schema = False

    @get("/{reservation_id:uuid}", name="reservation")
    async def show(self, request: Request, reservation_id: FromPath[UUID]) -> Response:
        """The confirm page of a live hold; "this hold expired" for an expired or released one; a confirmed
        hold goes on to its booking's payment."""
        reservation = await queries.owner_reservation(request.user, reservation_id)
        if reservation["booking_id"] is not None:
            return Redirect(path=_pay_url(reservation["booking_id"]), status_code=303)
        return _page(reservation)

    @post("/{reservation_id:uuid}/confirm", name="reservation_confirm")
    async def confirm(self, request: Request, reservation_id: FromPath[UUID], data: FormData) -> Response:
        reservation = await queries.owner_reservation(request.user, reservation_id)
        notes = data.get("notes") if isinstance(data.get("notes"), str) else ""
        lock_token = data.get("lock_token") if isinstance(data.get("lock_token"), str) else ""
        try:
            booking = await services.confirm(request.user, reservation_id, lock_token, notes or None, source="web")
        except InvalidInput as exc:
            return _page(reservation, message=exc.detail, notes=notes, errors=exc.field_errors, status=422)
        except (Conflict, Gone) as exc:
            current = await queries.owner_reservation(request.user, reservation_id)
            if current["booking_id"] is not None:  # confirmed meanwhile (another tab): go on
                return Redirect(path=_pay_url(current["booking_id"]), status_code=303)
            return _page(current, message=exc.detail, notes=notes, status=exc.status)
        return Redirect(path=_pay_url(booking["booking_id"]), status_code=303)

    @post("/{reservation_id:uuid}/release", name="reservation_release")
    async def release(self, request: Request, reservation_id: FromPath[UUID]) -> Response:
        """Give the place back and return to the finder on the same day."""
        reservation = await queries.owner_reservation(request.user, reservation_id)
        if reservation["status"] == "pending":
            try:
                await services.release(request.user, reservation_id)
            except Conflict:
                pass  # expired or released a moment ago: the place is back already
        return Redirect(path=finder_url(reservation["clinic_id"], reservation["service_id"],
                                        reservation["slot_date"], reservation["pet_id"]), status_code=303)
