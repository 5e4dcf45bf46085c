"""Piccolo mappings of clinics, services and staff (DDL: piccolo_migrations/0001)."""

from piccolo.columns import UUID, Boolean, ForeignKey, Integer, Numeric, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Clinic(Table, tablename="clinics"):
    clinic_id = UUID(primary_key=True)
    name = Varchar(length=120)
    address = Text(default="")
    phone = Varchar(length=30, null=True, default=None)
    timezone = Varchar(length=64, default="Asia/Jakarta")
    min_booking_notice_minutes = Integer(default=60)
    refund_deadline_hours = Integer(default=24)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Service(Table, tablename="services"):
    service_id = UUID(primary_key=True)
    clinic_id = ForeignKey(references=Clinic, null=False)
    name = Varchar(length=120)
    description = Text(default="")
    duration_minutes = Integer()
    price = Numeric(digits=(12, 2))
    currency = Varchar(length=3, default="IDR")
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Staff(Table, tablename="staff"):
    staff_id = UUID(primary_key=True)
    clinic_id = ForeignKey(references=Clinic, null=False)
    name = Varchar(length=120)
    role = Varchar(length=30, default="veterinarian")
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
