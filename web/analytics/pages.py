"""Managers' pages: analytics over booking_analytics_daily (with its CSV and "refresh now") and the
database health page. Managers only, each scoped to the clinics they manage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.params import URLEncodedBody
from litestar.response import Redirect, Template

from web.accounts.auth import manager_only
from web.analytics import monitoring, services
from web.analytics.charts import service_chart, trend_chart

FormData = URLEncodedBody[dict[str, Any]]
FILTER_NAMES = ("first_day", "last_day", "clinic", "service")


def _filter_params(values: Mapping[str, Any]) -> dict[str, str]:
    """The filter fields of a query or form (other fields, e.g. the CSRF token, left out; a repeated field
    counts once)."""
    return {name: str(values.get(name) or "")[:64] for name in FILTER_NAMES}


async def _report_page(request: Request, params: dict[str, str], *, notice: str | None = None,
                       status_code: int = 200, headers: dict[str, str] | None = None) -> Template:
    scope = await services.manager_scope(request.user)
    filters = services.check_filters(scope, params)
    report = await services.analytics_report(
        request.user, filters.first_day, filters.last_day, filters.clinic_id, filters.service_id, scope=scope
    )
    query = urlencode(filters.query_params())
    return Template("analytics/report.html", status_code=status_code, headers=headers, context={
        "show_database_health": monitoring.can_see_database_health(request.user),
        "scope": scope,
        "filters": filters,
        "service_groups": scope.services_by_clinic(filters.clinic_id),
        "report": report,
        "trend": trend_chart(report.daily),
        "service_chart": service_chart(report.by_service),
        "as_of": await services.data_as_of(),
        "zone": scope.zone(filters.clinic_id),
        "csv_url": f"/manage/analytics.csv?{query}",
        "notice": notice,
    })


class AnalyticsPagesController(Controller):
    path = "/manage"
    guards = [manager_only]
    include_in_schema = False

    @get("/analytics", name="analytics")
    async def analytics_page(self, request: Request) -> Template:
        return await _report_page(request, _filter_params(request.query_params))

    @get("/analytics.csv", name="analytics_csv")
    async def analytics_csv(self, request: Request) -> Response:
        params = _filter_params(request.query_params)
        filters = services.check_filters(await services.manager_scope(request.user), params)
        body = await services.analytics_csv(
            request.user, filters.first_day, filters.last_day, filters.clinic_id, filters.service_id
        )
        return Response(
            content=body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{services.csv_filename(filters)}"',
                     "Cache-Control": "no-store"},
        )

    @post("/analytics/refresh", name="analytics_refresh")
    async def refresh(self, request: Request, data: FormData) -> Response:
        params = _filter_params(data)
        # The filters are checked first: a foreign clinic is refused before anything runs.
        services.check_filters(await services.manager_scope(request.user), params)
        try:
            await services.refresh_now(request.user)
        except TooManyRequestsException as exc:
            # The page itself, with the reason: works without JavaScript, and tells when to try again.
            return await _report_page(request, params, notice=exc.detail, status_code=429, headers=exc.headers)
        query = urlencode({key: value for key, value in params.items() if value})
        return Redirect(path="/manage/analytics" + (f"?{query}" if query else ""), status_code=303)

    @get("/database", name="database_health")
    async def database_page(self, request: Request) -> Template:
        health = await monitoring.database_health(request.user)
        return Template("analytics/database.html", context={"health": health, "human_bytes": monitoring.human_bytes})
