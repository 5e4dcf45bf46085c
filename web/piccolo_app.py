"""Piccolo's app config: the Table classes of every feature and the top-level migrations folder."""

from piccolo.conf.apps import AppConfig

from web.accounts.tables import AuthSession, LoginFailure, Pet, User
from web.analytics.tables import AnalyticsRefresh
from web.booking.tables import Booking, BookingHistory, Reservation
from web.clinics.tables import Clinic, Service, Staff
from web.core.tables import RateLimitHit
from web.desk.tables import DeskOwnerLookup
from web.payments.tables import PaymentRecord, Refund
from web.settings import PROJECT_ROOT
from web.slots.tables import Slot

APP_CONFIG = AppConfig(
    app_name="vetbook",
    migrations_folder_path=str(PROJECT_ROOT / "piccolo_migrations"),
    table_classes=[
        Clinic, Service, Staff, User, Pet, Slot, Reservation, Booking, BookingHistory, PaymentRecord, Refund,
        AuthSession, RateLimitHit, AnalyticsRefresh, LoginFailure, DeskOwnerLookup,
    ],
    migration_dependencies=[],
    commands=[],
)
