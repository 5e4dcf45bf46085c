"""JSON API: searching and opening slots."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromQuery, JSONBody

from web.accounts.auth import signed_in, staff_only
from web.slots import generation, queries


class SlotOut(msgspec.Struct):
    slot_id: UUID
    start_time: datetime
    end_time: datetime
    capacity: int
    remaining: int
    price: Decimal
    staff_id: UUID | None


class NewSlot(msgspec.Struct, forbid_unknown_fields=True):
    clinic_id: UUID
    service_id: UUID
    start_time: datetime
    end_time: datetime
    capacity: Annotated[int, msgspec.Meta(ge=1, le=100)]
    staff_id: UUID | None = None
    price: Decimal | None = None  # checked by the service (msgspec cannot bound a Decimal)


class CreatedSlot(msgspec.Struct):
    slot_id: UUID
    clinic_id: UUID
    service_id: UUID
    staff_id: UUID | None
    date: date
    start_time: datetime
    end_time: datetime
    status: str
    capacity: int
    remaining: int
    price: Decimal | None


class SlotApiController(Controller):
    path = "/api/v1/slots"
    tags = ["slots"]

    @get("/", guards=[signed_in])
    async def search(self, clinic_id: FromQuery[UUID], service_id: FromQuery[UUID], date: FromQuery[date]) -> list[SlotOut]:
        """The design's slot search (3.3.1): free slots of a service on the clinic-local ``date``."""
        return [SlotOut(**{key: row[key] for key in SlotOut.__struct_fields__})
                for row in await queries.search_slots(clinic_id, service_id, date)]

    @post("/", guards=[staff_only], status_code=201)
    async def create(self, request: Request, data: JSONBody[NewSlot]) -> CreatedSlot:
        """Open a slot (receptionists and managers of the clinic)."""
        row = await generation.create_slot(request.user, data.clinic_id, data.service_id, data.staff_id,
                                         data.start_time, data.end_time, data.capacity, data.price)
        return CreatedSlot(**row)
