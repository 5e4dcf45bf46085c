"""The desk's list of refunds to pay by hand (receptionists and managers of the clinic).

Thin: parse, call web/payments/refunds.py, render. The form posts without JavaScript and answers with a 303
(POST/redirect/GET); a refused change re-renders the list with the reason (409).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts.auth import CurrentUser, staff_only
from web.booking.codes import display_booking_code
from web.clinics import services as clinic_services
from web.core.errors import Conflict, InvalidInput
from web.desk.services import choose_clinic
from web.payments import refunds

ClinicParam = Annotated[str | None, QueryParameter(name="clinic", required=False, max_length=64)]
DoneParam = Annotated[str | None, QueryParameter(name="done", required=False, max_length=64)]


class RefundPagesController(Controller):
    path = "/desk/refunds"
    guards = [staff_only]
    include_in_schema = False

    async def _page(self, user: CurrentUser, clinic: str | None, done: str | None = None, error: str | None = None,
                    status: int = 200) -> Template:
        clinics = await clinic_services.clinics_for(user)
        chosen = choose_clinic(clinics, clinic)
        return Template("payments/refunds.html", status_code=status, context={
            "clinics": clinics, "clinic": chosen,
            "refunds": await refunds.refunds_to_pay_by_hand(user, chosen["clinic_id"]),
            "done": done, "error": error, "display_code": display_booking_code,
        })

    @get("/", name="desk_refunds")
    async def to_pay_by_hand(self, request: Request, clinic: ClinicParam = None, done: DoneParam = None) -> Template:
        """The clinic's refunds that a person must pay back, oldest first, with the owner's contact details."""
        return await self._page(request.user, clinic, done=done)

    @post("/{refund_id:uuid}/paid", name="desk_refund_paid")
    async def mark_paid(self, request: Request, refund_id: FromPath[UUID],
                        data: URLEncodedBody[dict[str, Any]]) -> Response:
        """The money was paid back by hand: the refund closes, recording who did it."""
        note = data.get("note").strip() if isinstance(data.get("note"), str) else ""
        clinic = data.get("clinic") if isinstance(data.get("clinic"), str) else None
        try:
            refund = await refunds.mark_paid_by_hand(request.user, refund_id, note or None)
        except (Conflict, InvalidInput) as exc:
            return await self._page(request.user, clinic, error=exc.detail, status=exc.status)
        query = urlencode({"clinic": str(refund["clinic_id"]), "done": str(refund_id)})
        return Redirect(path=f"/desk/refunds?{query}", status_code=303)
