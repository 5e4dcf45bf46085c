"""HTML controllers of the public clinic pages (thin: parse, call a service, render)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Template

from web.clinics import services
from web.core.messages import N_


class ClinicPagesController(Controller):
    include_in_schema = False
    @get("/", name="home")
    async def home(self) -> Template:
        return Template("clinics/home.html", context={"clinics": await services.list_clinics()})

    @get("/clinics/{clinic_id:uuid}/services", name="clinic_services")
    async def clinic_services(self, request: HTMXRequest, clinic_id: FromPath[UUID]) -> Template:
        clinic = await services.get_clinic(clinic_id)
        if clinic is None:
            raise NotFoundException(N_("No such clinic."))
        context = {"clinic": clinic, "services": await services.list_active_services(clinic_id)}
        if request.htmx:
            return HTMXTemplate(template_name="clinics/_services.html", context=context)
        # Without JavaScript the link is a plain navigation: render the whole page.
        return Template("clinics/services.html", context=context)
