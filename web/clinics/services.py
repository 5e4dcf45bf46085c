"""Clinics, their services and staff (read side), and which clinics a staff member covers."""

from __future__ import annotations

from uuid import UUID

from web.accounts.auth import CurrentUser
from web.clinics.tables import Clinic, Service, Staff
from web.core.errors import NotFound
from web.core.messages import N_


async def list_clinics() -> list[dict]:
    """Every clinic, by name."""
    return await Clinic.select(
        Clinic.clinic_id, Clinic.name, Clinic.timezone, Clinic.address, Clinic.min_booking_notice_minutes,
        Clinic.refund_deadline_hours,
    ).order_by(Clinic.name)


async def get_clinic(clinic_id: UUID) -> dict | None:
    return await Clinic.select(
        Clinic.clinic_id, Clinic.name, Clinic.address, Clinic.timezone
    ).where(Clinic.clinic_id == clinic_id).first()


async def list_active_services(clinic_id: UUID) -> list[dict]:
    """A clinic's bookable services, by name."""
    return await Service.select(
        Service.service_id, Service.name, Service.duration_minutes, Service.price, Service.currency
    ).where((Service.clinic_id == clinic_id) & (Service.is_active.eq(True))).order_by(Service.name)


# ------------------------------------------------------------------ which clinics a staff member covers

_CLINIC_COLUMNS = (Clinic.clinic_id, Clinic.name, Clinic.timezone)


async def clinics_for(actor: CurrentUser) -> list[dict]:
    """The clinics ``actor`` works for, by name: a receptionist's own clinic, a manager's managed one, every
    clinic for a manager of all (``clinic_id`` None). Nobody else covers any."""
    if not actor.is_staff:
        return []
    query = Clinic.select(*_CLINIC_COLUMNS).order_by(Clinic.name)
    if actor.clinic_id is not None:
        query = query.where(Clinic.clinic_id == actor.clinic_id)
    return await query


async def clinic_of_staff(actor: CurrentUser, clinic_id: UUID) -> dict:
    """The clinic (id, name, zone), if ``actor`` works there (receptionist) or manages it; else "not found"."""
    if not actor.is_staff or not actor.works_at(clinic_id):
        raise NotFound(N_("No such clinic."))
    clinic = await Clinic.select(*_CLINIC_COLUMNS).where(Clinic.clinic_id == clinic_id).first()
    if clinic is None:
        raise NotFound(N_("No such clinic."))
    return clinic


async def active_staff(clinic_id: UUID) -> list[dict]:
    """The clinic's staff who still work there, by name."""
    return await Staff.select(Staff.staff_id, Staff.name, Staff.role).where(
        (Staff.clinic_id == clinic_id) & (Staff.is_active.eq(True))).order_by(Staff.name)
