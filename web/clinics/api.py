"""JSON API: clinics and their services."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.params import FromPath

from web.accounts.auth import signed_in
from web.clinics import services
from web.core.errors import NotFound


class ClinicOut(msgspec.Struct):
    clinic_id: UUID
    name: str
    timezone: str
    address: str
    # Shown to owners before they book: no hold closer than this to the start, and a cancellation later
    # than this before the start is not refunded.
    min_booking_notice_minutes: int
    refund_deadline_hours: int


class ServiceOut(msgspec.Struct):
    service_id: UUID
    name: str
    duration_minutes: int
    price: Decimal


class ClinicApiController(Controller):
    path = "/api/v1/clinics"
    tags = ["clinics"]
    guards = [signed_in]

    @get("/")
    async def list_clinics(self) -> list[ClinicOut]:
        """Every clinic."""
        return [ClinicOut(**row) for row in await services.list_clinics()]

    @get("/{clinic_id:uuid}/services")
    async def list_services(self, clinic_id: FromPath[UUID]) -> list[ServiceOut]:
        """A clinic's bookable services."""
        if await services.get_clinic(clinic_id) is None:
            raise NotFound("No such clinic.")
        return [ServiceOut(service_id=row["service_id"], name=row["name"], duration_minutes=row["duration_minutes"],
                           price=row["price"]) for row in await services.list_active_services(clinic_id)]
