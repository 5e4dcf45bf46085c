"""JSON API of the booking engine for the mobile app: holds, bookings and their transitions.

Thin: parse, call web/booking/services.py, shape the answer. Errors are problem details (web/core/errors.py).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from web.accounts.auth import owner_only, signed_in, staff_only
from web.booking import queries, services

Notes = Annotated[str, msgspec.Meta(max_length=2000)]
Version = Annotated[int, msgspec.Meta(ge=1)]


class HoldRequest(msgspec.Struct, forbid_unknown_fields=True):
    slot_id: UUID
    pet_id: UUID


class HoldOut(msgspec.Struct):
    reservation_id: UUID
    lock_token: str
    expires_at: datetime
    slot_id: UUID


class ConfirmRequest(msgspec.Struct, forbid_unknown_fields=True):
    lock_token: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    notes: Notes | None = None


class BookingOut(msgspec.Struct):
    booking_id: UUID
    status: str
    payment_status: str
    slot_id: UUID
    pet_id: UUID
    clinic_id: UUID
    service_id: UUID
    staff_id: UUID | None
    total_amount: Decimal
    discount_amount: Decimal
    final_amount: Decimal
    refunded_amount: Decimal
    currency: str
    version: int
    notes: str | None
    booking_source: str
    created_at: datetime
    payment_due_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    cancellation_reason: str | None
    rescheduled_from_booking_id: UUID | None
    start_time: datetime | None = None
    end_time: datetime | None = None


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=50)]
    version: Version
    notes: Notes | None = None


class RescheduleRequest(msgspec.Struct, forbid_unknown_fields=True):
    slot_id: UUID
    version: Version


class VersionRequest(msgspec.Struct, forbid_unknown_fields=True):
    version: Version


def booking_out(row: dict) -> BookingOut:
    return BookingOut(**{key: row.get(key) for key in BookingOut.__struct_fields__})


class ReservationApiController(Controller):
    path = "/api/v1/reservations"
    tags = ["reservations"]
    guards = [owner_only]

    @post("/", status_code=HTTP_201_CREATED)
    async def hold(self, request: Request, data: JSONBody[HoldRequest],
                   idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None) -> HoldOut:
        """Hold a place for HOLD_TTL_SECONDS (409 when the slot cannot be held). With an ``Idempotency-Key``
        header (8–64 of ``A-Za-z0-9._:-``), a repeat answers the hold the first request made."""
        row = await services.hold(request.user, data.slot_id, data.pet_id, idempotency_key)
        return HoldOut(reservation_id=row["reservation_id"], lock_token=row["lock_token"],
                       expires_at=row["expires_at"], slot_id=row["slot_id"])

    @delete("/{reservation_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def release(self, request: Request, reservation_id: FromPath[UUID]) -> None:
        """Give the hold back."""
        await services.release(request.user, reservation_id)

    @post("/{reservation_id:uuid}/confirm", status_code=HTTP_201_CREATED)
    async def confirm(self, request: Request, reservation_id: FromPath[UUID], data: JSONBody[ConfirmRequest]) -> BookingOut:
        """Turn the hold into a booking (410 when it expired, 409 when released). A repeat with the same
        token answers the same booking."""
        return booking_out(await services.confirm(request.user, reservation_id, data.lock_token, data.notes))


class BookingApiController(Controller):
    path = "/api/v1/bookings"
    tags = ["bookings"]
    guards = [signed_in]

    @get("/")
    async def list_bookings(self, request: Request) -> list[BookingOut]:
        """An owner's bookings; a receptionist's clinic's; a manager's clinics'."""
        return [booking_out(row) for row in await queries.list_bookings(request.user)]

    @get("/{booking_id:uuid}")
    async def get_booking(self, request: Request, booking_id: FromPath[UUID]) -> BookingOut:
        """One booking (404 when it is not yours to see)."""
        return booking_out(await queries.get_booking(request.user, booking_id))

    @post("/{booking_id:uuid}/cancel", status_code=HTTP_200_OK)
    async def cancel(self, request: Request, booking_id: FromPath[UUID], data: JSONBody[CancelRequest]) -> BookingOut:
        """Cancel (409 on a stale version); refunds by policy."""
        await services.cancel(request.user, booking_id, data.reason, data.version, data.notes)
        return booking_out(await queries.get_booking(request.user, booking_id))

    @post("/{booking_id:uuid}/reschedule", status_code=HTTP_200_OK)
    async def reschedule(self, request: Request, booking_id: FromPath[UUID],
                         data: JSONBody[RescheduleRequest]) -> BookingOut:
        """Move to another slot of the same service; answers the new booking."""
        replacement = await services.reschedule(request.user, booking_id, data.slot_id, data.version)
        return booking_out(await queries.get_booking(request.user, replacement["booking_id"]))

    @post("/{booking_id:uuid}/check-in", guards=[staff_only], status_code=HTTP_200_OK)
    async def check_in(self, request: Request, booking_id: FromPath[UUID], data: JSONBody[VersionRequest]) -> BookingOut:
        """The pet arrived (receptionists)."""
        await services.check_in(request.user, booking_id, data.version)
        return booking_out(await queries.get_booking(request.user, booking_id))

    @post("/{booking_id:uuid}/complete", guards=[staff_only], status_code=HTTP_200_OK)
    async def complete(self, request: Request, booking_id: FromPath[UUID], data: JSONBody[VersionRequest]) -> BookingOut:
        """The visit is over (receptionists)."""
        await services.complete(request.user, booking_id, data.version)
        return booking_out(await queries.get_booking(request.user, booking_id))

    @post("/{booking_id:uuid}/no-show", guards=[staff_only], status_code=HTTP_200_OK)
    async def no_show(self, request: Request, booking_id: FromPath[UUID], data: JSONBody[VersionRequest]) -> BookingOut:
        """The pet did not come, after the start time (receptionists)."""
        await services.mark_no_show(request.user, booking_id, data.version)
        return booking_out(await queries.get_booking(request.user, booking_id))
