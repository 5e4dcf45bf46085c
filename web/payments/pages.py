"""The sandbox gateway's payment page: a simulated gateway built into the app, for demos and tests.

Like a real gateway's page it only collects the customer's decision; the payment itself changes when the
gateway's signed notification reaches /api/v1/payments/sandbox/notifications. The page sends that
notification over real HTTP to this same server, so a sandbox payment takes the path a Midtrans one does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts.auth import signed_in
from web.core.errors import DomainError, InvalidInput, NotFound
from web.core.messages import N_
from web.payments import providers, services

log = structlog.get_logger(__name__)

NOTIFICATION_PATH = "/api/v1/payments/sandbox/notifications"
# The notification goes to this very process; it answers in milliseconds unless something is wrong.
NOTIFICATION_TIMEOUT_SECONDS = 10.0


def _own_base_url(request: Request) -> str:
    """This server on the loopback interface, at the port the request came in on. Never the Host header:
    a client chooses that, and the server must not send requests wherever a client says."""
    server = request.scope.get("server") or (None, None)
    port = server[1] or request.url.port or (443 if request.url.scheme == "https" else 80)
    return f"http://127.0.0.1:{port}"


class SandboxPagesController(Controller):
    path = "/sandbox/pay"
    guards = [signed_in]
    include_in_schema = False

    async def _sandbox_payment(self, request: Request, payment_id: UUID) -> dict:
        payment = await services.payment_for_owner(request.user, payment_id)
        if payment["payment_provider"] != providers.SANDBOX or providers.SANDBOX not in providers.enabled_providers():
            raise NotFound(N_("No such payment."))
        return payment

    @get("/{payment_id:uuid}", name="sandbox_pay")
    async def page(self, request: Request, payment_id: FromPath[UUID]) -> Template:
        payment = await self._sandbox_payment(request, payment_id)
        return Template("payments/sandbox_pay.html", context={"payment": payment})

    @post("/{payment_id:uuid}", name="sandbox_pay_submit")
    async def submit(self, request: Request, payment_id: FromPath[UUID],
                     data: URLEncodedBody[dict[str, Any]]) -> Response:
        """Pay or decline: sign the gateway's notification and deliver it to our notification endpoint."""
        payment = await self._sandbox_payment(request, payment_id)
        decision = data.get("decision")
        if decision not in ("pay", "decline"):
            raise InvalidInput({"decision": N_("Choose Pay or Decline.")})
        if payment["status"] == "pending":
            notification = providers.SandboxProvider().notification(
                payment["payment_id"], payment["amount"], payment["currency"], approve=decision == "pay"
            )
            try:
                async with httpx.AsyncClient(base_url=_own_base_url(request), timeout=NOTIFICATION_TIMEOUT_SECONDS,
                                             trust_env=False) as client:
                    answer = await client.post(NOTIFICATION_PATH, json=notification)
            except httpx.HTTPError as exc:
                log.error("sandbox notification not delivered", payment_id=str(payment_id), error=str(exc))
                raise DomainError(N_("The sandbox gateway could not reach the app. Please try again."), status=502) from exc
            if answer.status_code != 200:
                log.error("sandbox notification refused", payment_id=str(payment_id), status=answer.status_code,
                          body=answer.text[:500])
                raise DomainError(N_("The sandbox gateway's notification was refused."), status=502)
        return Redirect(path=f"/sandbox/pay/{payment_id}", status_code=303)
