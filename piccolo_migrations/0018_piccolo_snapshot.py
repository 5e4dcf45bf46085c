"""Piccolo's snapshot catches up with the schema: the foreign keys the raw migrations made NOT NULL are
``null=False`` in the Table classes now (tests/db/test_migrations.py compares them with the database).
``fake=True``: the columns were NOT NULL from the start, nothing runs."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import ForeignKey

ID = "2026-12-02T00:00:18:000000"
VERSION = "1.38.0"
DESCRIPTION = "foreign keys not null in the snapshot"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="vetbook", description=DESCRIPTION, fake=True
    )

    manager.alter_column(
        table_class_name="Service",
        tablename="services",
        column_name="clinic_id",
        db_column_name="clinic_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Staff",
        tablename="staff",
        column_name="clinic_id",
        db_column_name="clinic_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Pet",
        tablename="pets",
        column_name="owner_id",
        db_column_name="owner_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Slot",
        tablename="slots",
        column_name="clinic_id",
        db_column_name="clinic_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Slot",
        tablename="slots",
        column_name="service_id",
        db_column_name="service_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Reservation",
        tablename="reservations",
        column_name="user_id",
        db_column_name="user_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Reservation",
        tablename="reservations",
        column_name="pet_id",
        db_column_name="pet_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Reservation",
        tablename="reservations",
        column_name="slot_id",
        db_column_name="slot_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Reservation",
        tablename="reservations",
        column_name="service_id",
        db_column_name="service_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Booking",
        tablename="bookings",
        column_name="user_id",
        db_column_name="user_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Booking",
        tablename="bookings",
        column_name="pet_id",
        db_column_name="pet_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Booking",
        tablename="bookings",
        column_name="clinic_id",
        db_column_name="clinic_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Booking",
        tablename="bookings",
        column_name="service_id",
        db_column_name="service_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="Booking",
        tablename="bookings",
        column_name="slot_id",
        db_column_name="slot_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="BookingHistory",
        tablename="booking_history",
        column_name="booking_id",
        db_column_name="booking_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="PaymentRecord",
        tablename="payment_records",
        column_name="booking_id",
        db_column_name="booking_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="AuthSession",
        tablename="auth_sessions",
        column_name="user_id",
        db_column_name="user_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="DeskOwnerLookup",
        tablename="desk_owner_lookups",
        column_name="staff_user_id",
        db_column_name="staff_user_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    manager.alter_column(
        table_class_name="DeskOwnerLookup",
        tablename="desk_owner_lookups",
        column_name="clinic_id",
        db_column_name="clinic_id",
        params={"null": False},
        old_params={"null": True},
        column_class=ForeignKey,
        old_column_class=ForeignKey,
        schema=None,
    )

    return manager
