"""JSON API of payments: start a payment, the clinic's desk, and gateways' notifications.

Thin: parse, call web/payments/services.py, shape the answer. Errors are problem details (web/core/errors.py).
The notification endpoint takes no bearer token (a gateway has none): it is trusted by its signature (Midtrans,
the sandbox) or its callback token (Xendit) only, and it is exempt from CSRF like all of /api/.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from web.accounts.auth import owner_only, staff_only
from web.core.client_keys import CLIENT_KEY_PATTERN
from web.payments import refunds, services

IdempotencyKey = Annotated[str, msgspec.Meta(pattern=CLIENT_KEY_PATTERN)]
ProviderName = Annotated[str, msgspec.Meta(min_length=1, max_length=30)]


class PaymentRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: ProviderName
    # The client's key for this attempt (e.g. a UUID it made): sending it again answers the same payment.
    idempotency_key: IdempotencyKey


class PaymentOut(msgspec.Struct, omit_defaults=True):
    payment_id: UUID
    booking_id: UUID
    provider: str
    status: str
    amount: Decimal
    currency: str
    expires_at: datetime | None = None
    paid_at: datetime | None = None
    # Where the customer pays (absent for payment at the clinic's desk).
    payment_url: str | None = None


class NotificationOut(msgspec.Struct):
    payment_id: UUID
    status: str
    # False when the notification was a replay, out of order, or a status we do not act on.
    changed: bool


class RefundOut(msgspec.Struct, omit_defaults=True):
    refund_id: UUID
    payment_id: UUID
    booking_id: UUID
    amount: Decimal
    currency: str
    reason: str
    provider: str
    # requested → sent → succeeded / failed / manual (docs/payments.md)
    state: str
    attempts: int
    created_at: datetime
    manual_reason: str | None = None
    succeeded_at: datetime | None = None
    paid_by_hand_by: UUID | None = None
    paid_by_hand_at: datetime | None = None


class PaidByHandIn(msgspec.Struct, forbid_unknown_fields=True):
    # e.g. the bank transfer's reference
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None


def refund_out(row: dict) -> RefundOut:
    return RefundOut(**{name: row[name] for name in RefundOut.__struct_fields__ if row.get(name) is not None})


def payment_out(row: dict, request: Request) -> PaymentOut:
    url = row["payment_url"]
    if url and url.startswith("/"):
        # The sandbox's page is ours: give the app a full URL on the host it called.
        url = str(request.base_url).rstrip("/") + url
    return PaymentOut(
        payment_id=row["payment_id"], booking_id=row["booking_id"], provider=row["payment_provider"],
        status=row["status"], amount=row["amount"], currency=row["currency"], expires_at=row["expiry_time"],
        paid_at=row["paid_at"], payment_url=url,
    )


class PaymentApiController(Controller):
    path = "/api/v1"
    tags = ["payments"]

    @post("/bookings/{booking_id:uuid}/payments", guards=[owner_only], status_code=HTTP_201_CREATED,
          responses={HTTP_200_OK: ResponseSpec(PaymentOut, description="The key was seen before: the same payment.")})
    async def create_payment(self, request: Request, booking_id: FromPath[UUID],
                             data: JSONBody[PaymentRequestIn]) -> Response[PaymentOut]:
        """Start paying for a booking (201); the same idempotency key again answers the same payment (200).
        409 when the booking does not wait for payment or the key was used for another payment."""
        payment, created = await services.create_payment(request.user, booking_id, data.provider,
                                                         data.idempotency_key)
        return Response(payment_out(payment, request), status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @post("/payments/{payment_id:uuid}/mark-paid", guards=[staff_only], status_code=HTTP_200_OK)
    async def mark_paid(self, request: Request, payment_id: FromPath[UUID]) -> PaymentOut:
        """The money was taken at the clinic's desk (receptionists and managers of the booking's clinic)."""
        return payment_out(await services.mark_paid(request.user, payment_id), request)

    @post("/payments/{provider:str}/notifications", status_code=HTTP_200_OK, security=[])
    async def notification(self, request: Request, provider: FromPath[str],
                           data: JSONBody[dict[str, Any]]) -> NotificationOut:
        """A gateway's notification: Midtrans' (and the sandbox's) verified by the signature in its body,
        Xendit's by its x-callback-token header; 403 when it is wrong. Replays and out-of-order notifications
        answer 200 and change nothing."""
        result = await services.handle_notification(provider, data, request.headers)
        return NotificationOut(**result)

    @get("/clinics/{clinic_id:uuid}/refunds-to-pay-by-hand", guards=[staff_only])
    async def refunds_to_pay_by_hand(self, request: Request, clinic_id: FromPath[UUID]) -> list[RefundOut]:
        """The clinic's refunds the gateway cannot return (manual) or that found no answer (failed), oldest
        first: receptionists and managers of the clinic."""
        return [refund_out(row) for row in await refunds.refunds_to_pay_by_hand(request.user, clinic_id)]

    @post("/refunds/{refund_id:uuid}/paid-by-hand", guards=[staff_only], status_code=HTTP_200_OK)
    async def mark_refund_paid_by_hand(self, request: Request, refund_id: FromPath[UUID],
                                       data: JSONBody[PaidByHandIn]) -> RefundOut:
        """The money was paid back by hand: the refund closes as succeeded, recording who did it. 409 when
        it is not a refund to pay by hand."""
        return refund_out(await refunds.mark_paid_by_hand(request.user, refund_id, data.note))
