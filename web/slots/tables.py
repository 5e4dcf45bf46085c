"""Piccolo mapping of slots (DDL: piccolo_migrations/0002, 0003).

The real primary key is (slot_id, date), the partition key included; Piccolo knows only slot_id, which
is unique in practice (gen_random_uuid) and is what the ORM filters by.
"""

from piccolo.columns import UUID, Date, ForeignKey, Integer, Numeric, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from web.accounts.tables import User
from web.clinics.tables import Clinic, Service, Staff


class Slot(Table, tablename="slots"):
    slot_id = UUID(primary_key=True)
    clinic_id = ForeignKey(references=Clinic, null=False)
    service_id = ForeignKey(references=Service, null=False)
    staff_id = ForeignKey(references=Staff, null=True, default=None)
    date = Date()
    start_time = Timestamptz()
    end_time = Timestamptz()
    status = Varchar(length=20, default="available")
    capacity = Integer(default=1)
    remaining = Integer()
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    created_by = ForeignKey(references=User, null=True, default=None)
    price = Numeric(digits=(12, 2), null=True, default=None)
    version = Integer(default=1)
