"""Page objects: what a test may see and do on each page, by ``data-testid`` (https://playwright.dev/docs/pom)."""

from tests.e2e.pages.clinic_services import ClinicServicesPage
from tests.e2e.pages.components import ServiceRow, ServicesTable
from tests.e2e.pages.home import ClinicCard, HomePage

__all__ = ["ClinicCard", "ClinicServicesPage", "HomePage", "ServiceRow", "ServicesTable"]
