"""The managers' page of a clinic's day against the payment gateways (web/payments/reconciliation.py), its CSV
and "Check again". Managers only, each for the clinics they manage (another clinic is "not found").

Thin: parse, call the service, render. The day picker works without JavaScript; with HTMX it swaps the report
alone and pushes the address, so back and reload still work.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.params import QueryParameter, URLEncodedBody
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Redirect, Template

from web.accounts.auth import CurrentUser, manager_only
from web.clinics import services as clinic_services
from web.desk.services import choose_clinic
from web.payments import reconciliation

ClinicParam = Annotated[str | None, QueryParameter(name="clinic", required=False, max_length=64)]
DateParam = Annotated[str | None, QueryParameter(name="date", required=False, max_length=32)]
CheckedParam = Annotated[str | None, QueryParameter(name="checked", required=False, max_length=8)]
# The page's answer differs for HTMX (the report alone) and for a full load: caches must tell them apart.
VARY_ON_HTMX = {"Vary": "HX-Request, HX-Target"}
PATH = "/manage/payments/reconciliation"


async def _context(user: CurrentUser, clinic: str | None, day: str | None, notice: str | None = None,
                   checked: bool = False) -> dict[str, Any]:
    clinics = await clinic_services.clinics_for(user)
    chosen = choose_clinic(clinics, clinic)
    report = await reconciliation.day_report(user, chosen, reconciliation.parse_day(day, chosen))
    query = urlencode({"clinic": str(chosen["clinic_id"]), "date": report.day.isoformat()})
    return {"clinics": clinics, "clinic": chosen, "report": report, "labels": reconciliation.MISMATCH_LABELS,
            "csv_url": f"{PATH}.csv?{query}", "notice": notice, "checked": checked}


class ReconciliationPagesController(Controller):
    path = "/manage/payments"
    guards = [manager_only]
    include_in_schema = False

    @get("/reconciliation", name="payment_reconciliation")
    async def page(self, request: HTMXRequest, clinic: ClinicParam = None, date: DateParam = None,
                   checked: CheckedParam = None) -> Template:
        """The clinic's day (default: yesterday, in its zone) and its mismatches with the gateways."""
        context = await _context(request.user, clinic, date, checked=bool(checked))
        htmx = request.htmx
        if htmx and not htmx.history_restore_request and htmx.target == "reconciliation-report":
            return HTMXTemplate(template_name="payments/_reconciliation_report.html", context=context,
                                headers=VARY_ON_HTMX)
        return Template("payments/reconciliation.html", context=context, headers=VARY_ON_HTMX)

    @get("/reconciliation.csv", name="payment_reconciliation_csv")
    async def csv(self, request: HTMXRequest, clinic: ClinicParam = None, date: DateParam = None) -> Response:
        """The day's mismatches as CSV, named after the clinic and the day."""
        clinics = await clinic_services.clinics_for(request.user)
        chosen = choose_clinic(clinics, clinic)
        report = await reconciliation.day_report(request.user, chosen, reconciliation.parse_day(date, chosen))
        return Response(
            content=reconciliation.report_csv(report).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{reconciliation.csv_filename(report)}"',
                     "Cache-Control": "no-store"},
        )

    @post("/reconciliation/check", name="payment_reconciliation_check")
    async def check_again(self, request: HTMXRequest, data: URLEncodedBody[dict[str, Any]]) -> Response:
        """Ask the gateways about the day again now (rate-limited), then show it (303)."""
        clinic = data.get("clinic") if isinstance(data.get("clinic"), str) else None
        day = data.get("date") if isinstance(data.get("date"), str) else None
        clinics = await clinic_services.clinics_for(request.user)
        chosen = choose_clinic(clinics, clinic)
        the_day = reconciliation.parse_day(day, chosen)
        try:
            await reconciliation.check_again(request.user, chosen["clinic_id"], the_day)
        except TooManyRequestsException as exc:
            # The page itself, with the reason: works without JavaScript, and tells when to try again.
            context = await _context(request.user, clinic, day, notice=exc.detail)
            return Template("payments/reconciliation.html", context=context, status_code=429, headers=exc.headers)
        query = urlencode({"clinic": str(chosen["clinic_id"]), "date": the_day.isoformat(), "checked": "1"})
        return Redirect(path=f"{PATH}?{query}", status_code=303)
