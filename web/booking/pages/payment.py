"""The owner's payment page of a booking: pay at the clinic or online, and what the payment is now.

The page always shows the payment's real state as the database has it (never what a gateway's redirect
said in its query string). Each render carries a fresh idempotency key in a hidden field, so a form sent
twice starts one payment, not two.
"""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts.auth import owner_only
from web.booking import queries, state
from web.booking.codes import display_booking_code
from web.core.client_keys import CLIENT_KEY
from web.core.errors import DomainError, InvalidInput
from web.core.messages import N_
from web.payments import providers, services

FormData = URLEncodedBody[dict[str, Any]]
FORM_EXPIRED = N_("This form is incomplete or expired. Please choose how to pay again.")


def new_idempotency_key() -> str:
    return "web-" + secrets.token_urlsafe(24)


class PayPagesController(Controller):
    path = "/bookings"
    guards = [owner_only]
    include_in_schema = False

    async def _page(self, request: Request, booking_id: UUID, status: int = 200, error: str | None = None) -> Template:
        booking = await queries.owner_booking(request.user, booking_id)
        return Template("booking/pay.html", status_code=status, context={
            "booking": booking, "code": display_booking_code(booking["booking_code"]),
            "pay_state": services.payment_state(booking), "can_pay": state.can_pay(booking),
            "providers": providers.enabled_providers(),
            "idempotency_key": new_idempotency_key(), "error": error,
        })

    @get("/{booking_id:uuid}/pay", name="booking_pay")
    async def pay_page(self, request: Request, booking_id: FromPath[UUID]) -> Template:
        return await self._page(request, booking_id)

    @post("/{booking_id:uuid}/pay", name="booking_pay_submit")
    async def pay(self, request: Request, booking_id: FromPath[UUID], data: FormData) -> Response:
        await queries.owner_booking(request.user, booking_id)  # 404 before anything else
        provider = str(data.get("provider") or "")
        key = str(data.get("idempotency_key") or "")
        if not CLIENT_KEY.match(key):
            return await self._page(request, booking_id, 422, error=FORM_EXPIRED)
        try:
            payment, _created = await services.create_payment(request.user, booking_id, provider, key)
        except InvalidInput as exc:
            return await self._page(request, booking_id, 422, error=exc.detail)
        except DomainError as exc:
            if exc.status == 404:
                raise
            # 409 (already paid, too late, key reused) or 502 (the gateway did not answer): say so on the page.
            return await self._page(request, booking_id, exc.status, error=exc.detail)
        if payment["payment_provider"] == providers.CLINIC:
            return Redirect(path=f"/bookings/{booking_id}", status_code=303)
        if payment["payment_url"]:
            return Redirect(path=payment["payment_url"], status_code=303)
        # The gateway's page is not known yet (the same form's first submit is still waiting for it).
        return Redirect(path=f"/bookings/{booking_id}/pay", status_code=303)
