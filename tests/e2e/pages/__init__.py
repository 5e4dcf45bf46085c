"""Page objects: what a test may see and do on each page, by ``data-testid`` (https://playwright.dev/docs/pom).

Every page object is exported here: ``from tests.e2e.pages import SlotFinderPage, LoginPage``."""

from tests.e2e.pages.analytics import AnalyticsPage, DatabaseHealthPage
from tests.e2e.pages.booking import ConfirmPage, SlotFinderPage
from tests.e2e.pages.clinic_services import ClinicServicesPage
from tests.e2e.pages.components import ServiceRow, ServicesTable
from tests.e2e.pages.desk import DeskBookForm, DeskBookingPage, DeskDayPage, GridBookingCard
from tests.e2e.pages.desk_refunds import DeskRefundsPage, RefundRow
from tests.e2e.pages.desk_slots import GenerateSlotsPage, SlotListPage, SlotRow
from tests.e2e.pages.home import ClinicCard, HomePage
from tests.e2e.pages.login import LoginPage
from tests.e2e.pages.my_bookings import (
    BookingPage,
    CancelPage,
    MyBookingsPage,
    PayPage,
    ReschedulePage,
    SandboxGatewayPage,
)

__all__ = ["AnalyticsPage", "BookingPage", "CancelPage", "ClinicCard", "ClinicServicesPage", "ConfirmPage", "DatabaseHealthPage", "DeskBookForm", "DeskBookingPage", "DeskDayPage", "DeskRefundsPage", "GenerateSlotsPage", "GridBookingCard", "HomePage", "LoginPage", "MyBookingsPage", "PayPage", "RefundRow", "ReschedulePage", "SandboxGatewayPage", "ServiceRow", "ServicesTable", "SlotFinderPage", "SlotListPage", "SlotRow"]
