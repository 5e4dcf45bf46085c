"""Domain services of analytics over the booking_analytics_daily materialized view.

How the manager's figures are counted (the page's "how we count" note says the same). Every figure comes
from the view (migration 0004), whose rows are (clinic, clinic-local day the booking was *made*, service):

- **Bookings** = sum of ``total_bookings``: bookings made on those days, whatever became of them; a
  rescheduled booking is counted once (by its replacement).
- **Completed** = sum of ``completed_bookings``; **Cancelled** = sum of ``cancelled_bookings`` (by the
  owner or the clinic, refunded or not); **No-shows** = sum of ``no_show_bookings``.
- **No-show rate** = no-shows ÷ (completed + no-shows), in per cent to one decimal: of the visits that are
  over, the share where the pet did not come. Bookings still ahead do not dilute it. "n/a" when no visit
  is over yet.
- **Gross revenue** = sum of ``gross_revenue``: what was paid for the bookings made in the period, before any
  refund (unpaid, failed and superseded bookings bring nothing); **Refunds** = sum of ``refunded_amount``: what
  of it goes back (decided: on its way to the owner or paid back).
- **Revenue after refunds** (``revenue``) = sum of ``total_revenue``: the money kept, gross revenue minus refunds.
- **Gateway fees** = sum of ``gateway_fees``: what the payment gateways charged for those bookings' payments,
  as they reported it (``payment_records.transaction_fee``; a gateway that reports no fee counts nothing).
- **Net revenue** = revenue after refunds minus gateway fees: what the clinic is paid out in the end.
- **Average booking value** = revenue ÷ paid bookings (sum of ``paid_bookings``), to the cent: the money
  kept per paid booking, so that revenue = average × paid bookings. The view's per-day
  ``avg_booking_value`` is not averaged again: an average of averages weighs a quiet day like a busy one.

The previous period is the same number of days right before the chosen first day. A change in per cent
is "n/a" when the previous figure is zero or itself n/a (no division by zero). The no-show rate's change
is also given in percentage points.

Reads go through ``sql.fetch_read`` (a replica when configured): figures may lag behind the bookings by
up to the time since the last refresh, which ``data_as_of`` tells (the refresh time is read from the same
node as the view, so both lag together).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from piccolo.engine import engine_finder

from web.accounts.auth import ROLE_MANAGER, CurrentUser
from web.analytics import statements as q
from web.analytics.statements import VIEW_NAME
from web.core import clock, rate_limit, sql
from web.core.errors import DomainError, InvalidInput, NotFound
from web.core.forms import day_or_none, uuid_or_none
from web.core.messages import N_

# A manager may refresh the view once a minute: a concurrent refresh re-reads every booking.
REFRESH_RATE = "1/60"
REFRESH_TOO_SOON = N_("The figures were refreshed less than a minute ago. Please wait a minute and try again.")
DEFAULT_DAYS = 30
MAX_DAYS = 731
# For "today" when the manager's clinics lie in several zones: Western Indonesia, where most clinics are.
# Days outside these are typing mistakes (and the previous period of 0001-01-01 cannot be computed).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)
ZERO = Decimal("0")
CENT = Decimal("0.01")
TENTH = Decimal("0.1")


# ------------------------------------------------------------------------------------------ refreshing




async def refresh_booking_analytics() -> None:
    """Refresh the daily view without blocking readers (needs its unique index; see migration 0004) and
    record when, in the same transaction. Run hourly by the app's job and on demand (``refresh_now``)."""
    async with engine_finder().transaction():
        await sql.execute(q.REFRESH)
        await sql.execute(q.RECORD_REFRESH, VIEW_NAME)


async def refresh_now(manager: CurrentUser) -> None:
    """A manager's "Refresh now": at most ``REFRESH_RATE`` per manager (429 with Retry-After beyond)."""
    _require_manager(manager)
    await rate_limit.hit(f"analytics-refresh:user:{manager.user_id}", REFRESH_RATE, REFRESH_TOO_SOON)
    await refresh_booking_analytics()


async def data_as_of() -> datetime | None:
    """When the view was last refreshed (None if never recorded). Read from the node the figures come from."""
    rows = await sql.fetch_read("SELECT refreshed_at FROM analytics_refreshes WHERE view_name = $1", VIEW_NAME)
    return rows[0]["refreshed_at"] if rows else None


# ----------------------------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class ClinicOption:
    clinic_id: UUID
    name: str
    timezone: str


@dataclass(frozen=True)
class ServiceOption:
    service_id: UUID
    clinic_id: UUID
    name: str
    is_active: bool


@dataclass(frozen=True)
class AnalyticsFilters:
    """What a manager asked for, checked: ``clinic_id``/``service_id`` None mean "all I manage"."""

    first_day: date
    last_day: date
    clinic_id: UUID | None = None
    service_id: UUID | None = None

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def previous_first_day(self) -> date:
        return self.first_day - timedelta(days=self.days)

    @property
    def previous_last_day(self) -> date:
        return self.first_day - timedelta(days=1)

    def query_params(self) -> dict[str, str]:
        """The filters as the page's query string (for links, the CSV and the refresh form)."""
        return {
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "clinic": str(self.clinic_id) if self.clinic_id else "",
            "service": str(self.service_id) if self.service_id else "",
        }


@dataclass(frozen=True)
class ManagerScope:
    """The clinics a manager manages and their services (what the filters may offer)."""

    clinics: list[ClinicOption]
    services: list[ServiceOption]

    def clinic(self, clinic_id: UUID | None) -> ClinicOption | None:
        return next((clinic for clinic in self.clinics if clinic.clinic_id == clinic_id), None)

    def services_of(self, clinic_id: UUID | None) -> list[ServiceOption]:
        return [s for s in self.services if clinic_id is None or s.clinic_id == clinic_id]

    def services_by_clinic(self, clinic_id: UUID | None) -> list[tuple[ClinicOption, list[ServiceOption]]]:
        """The services filter's groups: each clinic (the one asked for, or all) with its services, in the
        scope's order; clinics without a service left out."""
        grouped: dict[UUID, list[ServiceOption]] = defaultdict(list)
        for service in self.services_of(clinic_id):
            grouped[service.clinic_id].append(service)
        return [(clinic, grouped[clinic.clinic_id]) for clinic in self.clinics if grouped.get(clinic.clinic_id)]

    def zone(self, clinic_id: UUID | None) -> str:
        """The zone of "today" and of times shown: the clinic's, or the shared zone of all of them."""
        if clinic_id is not None:
            return self.clinic(clinic_id).timezone
        zones = {clinic.timezone for clinic in self.clinics}
        return zones.pop() if len(zones) == 1 else clock.PLATFORM_ZONE


def _require_manager(user: CurrentUser) -> None:
    if user.role != ROLE_MANAGER:
        raise DomainError(detail=N_("This page is not available for your account."), status=403)




async def manager_scope(manager: CurrentUser) -> ManagerScope:
    """The clinics ``manager`` manages (every clinic for a manager without one) with their services."""
    _require_manager(manager)
    rows = await sql.fetch(q.SCOPE, manager.clinic_id)
    clinics: dict[UUID, ClinicOption] = {}
    services = []
    for row in rows:
        clinics.setdefault(row["clinic_id"], ClinicOption(row["clinic_id"], row["clinic_name"], row["timezone"]))
        if row["service_id"] is not None:
            services.append(ServiceOption(row["service_id"], row["clinic_id"], row["service_name"], row["is_active"]))
    return ManagerScope(list(clinics.values()), services)


def _parse_uuid(value: object, field_name: str, errors: dict[str, str]) -> UUID | None:
    if value in (None, ""):
        return None
    parsed = uuid_or_none(value)
    if parsed is None:
        errors[field_name] = N_("Choose one from the list.")
    return parsed


def _parse_day(value: object, field_name: str, errors: dict[str, str]) -> date | None:
    if value in (None, ""):
        return None
    day = day_or_none(str(value)[:10])
    if day is None:
        errors[field_name] = N_("Enter a date as YYYY-MM-DD.")
    return day


def _invalid(errors: dict[str, str]) -> InvalidInput:
    """InvalidInput whose page message is the first problem itself (the filters are one line of fields)."""
    return InvalidInput(errors, detail=next(iter(errors.values())))


def check_filters(scope: ManagerScope, params: dict[str, Any], today: date | None = None) -> AnalyticsFilters:
    """The page's query parameters (``first_day``, ``last_day``, ``clinic``, ``service``; each optional)
    checked against the manager's scope. Default: the last 30 days ending today (in the clinic's zone).

    A clinic or service the manager does not manage is NotFound (as if it did not exist); malformed
    dates or a reversed or too long range are InvalidInput."""
    errors: dict[str, str] = {}
    clinic_id = _parse_uuid(params.get("clinic"), "clinic", errors)
    service_id = _parse_uuid(params.get("service"), "service", errors)
    first_day = _parse_day(params.get("first_day"), "first_day", errors)
    last_day = _parse_day(params.get("last_day"), "last_day", errors)
    if errors:
        raise _invalid(errors)
    if clinic_id is not None and scope.clinic(clinic_id) is None:
        raise NotFound(N_("This clinic does not exist, or you do not manage it."))
    if service_id is not None:
        service = next((s for s in scope.services_of(clinic_id) if s.service_id == service_id), None)
        if service is None:
            raise NotFound(N_("This service does not exist, or it is not offered by the chosen clinic."))
    if today is None:
        today = clock.clinic_today(scope.zone(clinic_id))
    last_day = last_day or (today if first_day is None else first_day + timedelta(days=DEFAULT_DAYS - 1))
    first_day = first_day or last_day - timedelta(days=DEFAULT_DAYS - 1)
    if not (EARLIEST_DAY <= first_day and last_day <= LATEST_DAY):
        raise _invalid({"first_day": N_("Choose days between 2000 and 2100.")})
    if first_day > last_day:
        raise _invalid({"first_day": N_("The first day must not be after the last day.")})
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise _invalid({"last_day": N_("Choose at most %(count)d days.", count=MAX_DAYS)})
    return AnalyticsFilters(first_day, last_day, clinic_id, service_id)


# --------------------------------------------------------------------------------------------- figures


@dataclass
class Figures:
    """Sums of the view's columns over some of its rows; the KPIs are derived from them (module docstring)."""

    bookings: int = 0
    completed: int = 0
    cancelled: int = 0
    no_shows: int = 0
    rescheduled: int = 0
    paid_bookings: int = 0
    revenue: Decimal = ZERO  # after refunds
    gross_revenue: Decimal = ZERO
    refunds: Decimal = ZERO
    gateway_fees: Decimal = ZERO

    def add(self, row: Any) -> None:
        self.bookings += row["total_bookings"]
        self.completed += row["completed_bookings"]
        self.cancelled += row["cancelled_bookings"]
        self.no_shows += row["no_show_bookings"]
        self.rescheduled += row["rescheduled_bookings"]
        self.paid_bookings += row["paid_bookings"]
        self.revenue += row["total_revenue"]
        self.gross_revenue += row["gross_revenue"]
        self.refunds += row["refunded_amount"]
        self.gateway_fees += row["gateway_fees"]

    @property
    def net_revenue(self) -> Decimal:
        """Revenue after refunds and the gateways' fees."""
        return self.revenue - self.gateway_fees

    @property
    def no_show_rate(self) -> Decimal | None:
        """Per cent of the visits that are over (completed or no-show) where nobody came; None if none."""
        over = self.completed + self.no_shows
        if over == 0:
            return None
        return (Decimal(100 * self.no_shows) / over).quantize(TENTH, rounding=ROUND_HALF_UP)

    @property
    def average_booking_value(self) -> Decimal | None:
        """Revenue per paid booking, to the cent; None without a paid booking."""
        if self.paid_bookings == 0:
            return None
        return (self.revenue / self.paid_bookings).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Kpi:
    """One KPI card: this period, the previous one, and the change (None: "n/a")."""

    # bookings, completed, cancelled, no_show_rate, gross_revenue, refunds, revenue (after refunds), gateway_fees,
    # net_revenue, average_booking_value
    key: str
    label: str
    kind: str  # count, money, percent
    current: Decimal | int | None
    previous: Decimal | int | None
    change: Decimal | int | None
    change_percent: Decimal | None


def _kpi(key: str, label: str, kind: str, current, previous) -> Kpi:
    if current is None or previous is None:
        return Kpi(key, label, kind, current, previous, None, None)
    change = current - previous
    percent = None
    if previous != 0:
        percent = (Decimal(change) * 100 / Decimal(previous)).quantize(TENTH, rounding=ROUND_HALF_UP)
    return Kpi(key, label, kind, current, previous, change, percent)


def kpis(current: Figures, previous: Figures) -> list[Kpi]:
    """The KPIs of the page, in the order of its cards: the money from gross to net, step by step."""
    return [
        _kpi("bookings", N_("Bookings"), "count", current.bookings, previous.bookings),
        _kpi("completed", N_("Completed"), "count", current.completed, previous.completed),
        _kpi("cancelled", N_("Cancelled"), "count", current.cancelled, previous.cancelled),
        _kpi("no_show_rate", N_("No-show rate"), "percent", current.no_show_rate, previous.no_show_rate),
        _kpi("gross_revenue", N_("Gross revenue"), "money", current.gross_revenue, previous.gross_revenue),
        _kpi("refunds", N_("Refunds"), "money", current.refunds, previous.refunds),
        _kpi("revenue", N_("Revenue after refunds"), "money", current.revenue, previous.revenue),
        _kpi("gateway_fees", N_("Gateway fees"), "money", current.gateway_fees, previous.gateway_fees),
        _kpi("net_revenue", N_("Net revenue"), "money", current.net_revenue, previous.net_revenue),
        _kpi("average_booking_value", N_("Average booking value"), "money",
             current.average_booking_value, previous.average_booking_value),
    ]


@dataclass(frozen=True)
class DailyFigures:
    day: date
    figures: Figures


@dataclass(frozen=True)
class ServiceFigures:
    service_id: UUID
    service_name: str
    clinic_name: str
    figures: Figures


@dataclass(frozen=True)
class AnalyticsReport:
    filters: AnalyticsFilters
    current: Figures
    previous: Figures
    kpis: list[Kpi]
    daily: list[DailyFigures]  # one per day of the period, zeros where nothing was booked
    by_service: list[ServiceFigures]  # services with bookings in the period, most revenue first
    rows: list[dict] = field(default_factory=list)  # the view's rows of the period (the CSV; with_rows)




async def analytics_report(manager: CurrentUser, first_day: date, last_day: date, clinic_id: UUID | None = None,
                           service_id: UUID | None = None, scope: ManagerScope | None = None,
                           with_rows: bool = False) -> AnalyticsReport:
    """KPIs of ``first_day``..``last_day`` (clinic-local days the bookings were made) against the
    previous period of equal length, the daily trend and the breakdown by service, over the clinics the
    manager manages (or the one clinic / service asked for, which must be theirs: else NotFound).
    ``with_rows``: also the view's rows of the period (the CSV).

    The sums come from one read of the view, so the KPIs, charts and table agree; the CSV's rows are read
    from the same node and add up to them."""
    scope = scope or await manager_scope(manager)
    filters = check_filters(scope, {
        "first_day": first_day.isoformat(), "last_day": last_day.isoformat(),
        "clinic": clinic_id or "", "service": service_id or "",
    })
    clinic_ids = [filters.clinic_id] if filters.clinic_id else [clinic.clinic_id for clinic in scope.clinics]
    sums = await sql.fetch_read(q.VIEW_SUMS, filters.previous_first_day, filters.first_day, filters.last_day,
                                clinic_ids, filters.service_id)
    services_by_id = {service.service_id: service for service in scope.services}
    clinic_names = {clinic.clinic_id: clinic.name for clinic in scope.clinics}
    current, previous = Figures(), Figures()
    per_day: dict[date, Figures] = defaultdict(Figures)
    per_service: list[ServiceFigures] = []
    for row in sums:
        if row["level"] == q.LEVEL_TOTAL:
            (current if row["in_period"] else previous).add(row)
        elif not row["in_period"]:
            continue
        elif row["level"] == q.LEVEL_DAY:
            per_day[row["booking_date"]].add(row)
        else:
            figures = Figures()
            figures.add(row)
            service = services_by_id[row["service_id"]]
            per_service.append(ServiceFigures(service.service_id, service.name, clinic_names[service.clinic_id],
                                              figures))
    daily = [
        DailyFigures(day, per_day.get(day, Figures()))
        for day in (filters.first_day + timedelta(days=offset) for offset in range(filters.days))
    ]
    by_service = sorted(per_service,
                        key=lambda s: (-s.figures.revenue, -s.figures.bookings, s.clinic_name, s.service_name))
    rows = []
    if with_rows:
        rows = [dict(row) for row in await sql.fetch_read(q.VIEW_ROWS, filters.first_day, filters.last_day,
                                                          clinic_ids, filters.service_id)]
    return AnalyticsReport(filters, current, previous, kpis(current, previous), daily, by_service, rows)


# ------------------------------------------------------------------------------------------------- CSV


CSV_HEADER = ("date", "clinic", "service", "bookings", "completed", "cancelled", "no_shows", "rescheduled",
              "paid_bookings", "revenue", "gross_revenue", "refunds", "gateway_fees", "net_revenue")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` with an apostrophe in front when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def report_csv(report: AnalyticsReport) -> str:
    """The report's daily rows per clinic and service as CSV: a header row, ISO dates, money as plain
    numbers with two decimals (``revenue`` is after refunds, ``net_revenue`` after refunds and gateway fees),
    text cells made spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in report.rows:
        writer.writerow((
            row["booking_date"].isoformat(), spreadsheet_safe(row["clinic_name"]),
            spreadsheet_safe(row["service_name"]), row["total_bookings"], row["completed_bookings"],
            row["cancelled_bookings"], row["no_show_bookings"], row["rescheduled_bookings"],
            row["paid_bookings"], f"{row['total_revenue']:.2f}", f"{row['gross_revenue']:.2f}",
            f"{row['refunded_amount']:.2f}", f"{row['gateway_fees']:.2f}",
            f"{row['total_revenue'] - row['gateway_fees']:.2f}",
        ))
    return out.getvalue()


async def analytics_csv(manager: CurrentUser, first_day: date, last_day: date, clinic_id: UUID | None = None,
                        service_id: UUID | None = None) -> str:
    """The CSV of what the page shows for the same filters (see ``report_csv``)."""
    return report_csv(await analytics_report(manager, first_day, last_day, clinic_id, service_id, with_rows=True))


def csv_filename(filters: AnalyticsFilters) -> str:
    return f"vetbook-analytics-{filters.first_day.isoformat()}-{filters.last_day.isoformat()}.csv"
