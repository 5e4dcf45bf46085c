"""Domain services for clinics and their services (read side)."""

from __future__ import annotations

from uuid import UUID

from web.clinics.tables import Clinic, Service


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
