"""Reconciliation with the payment gateways (issue 16, point 3): asking a gateway what became of our payments.

- ``ask_about_pending_payments`` (a job, every minute): an online payment still ``pending`` some minutes after
  it started, whose booking still waits for payment, is asked about (``provider.status``); what the gateway
  says is applied through ``services.apply_gateway_report``, the idempotent path of a notification. So a
  payment whose notification was lost is settled (and its booking confirmed) before the booking would expire.
- ``reconcile_day`` (a job, and ``vetbook reconcile``): each clinic's online payments of a day, and those with
  a refund requested that day, are asked about, and the answers kept (``gateway_payment_reads``).
- ``day_report`` (the managers' page and its CSV): that day beside the gateway's answers, as a list of
  mismatches: paid at the gateway but not here, paid here but not there, amounts that differ, refunded here
  but not there, refunded there but not here. It only reports: a person decides what to do.

No gateway is called inside a database transaction: each run reads its candidates first (the clinics with
work, then each clinic's), calls the gateways, then records and applies the answers, each statement or
service its own transaction. A gateway's fee, when a read gives one, is kept on the payment
(``transaction_fee``), as a notification's is.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from web.accounts.auth import CurrentUser
from web.analytics.services import spreadsheet_safe
from web.booking.codes import display_booking_code
from web.core import clock, rate_limit, sql
from web.core.errors import Conflict, InvalidInput, NotFound
from web.core.forms import day_or_none
from web.core.messages import N_
from web.payments import providers, services
from web.payments import reconciliation_statements as rq
from web.payments.providers import GatewayReport, GatewayUnavailable, Outcome, PaymentProvider

log = structlog.get_logger(__name__)

# A pending payment is asked about once it is this old: the customer may still be paying, and the gateway's
# notification usually arrives within seconds of the money.
PENDING_MIN_AGE = timedelta(minutes=5)
# ...and asked again at most this often (a payment waits 30 minutes by default: a handful of reads).
ASK_AGAIN_AFTER = timedelta(minutes=4)
# Payments asked about per clinic and run; the rest wait for the next run.
PENDING_BATCH = 100
DAY_BATCH = 2000
# Gateway calls under way at once (each takes a worker thread for midtransclient).
GATEWAY_CONCURRENCY = 4
# "Check again" on the managers' page: each one asks the gateway about a whole day.
RECHECK_RATE = "1/60"
RECHECK_TOO_SOON = N_("The gateway was asked less than a minute ago. Please wait a minute and try again.")

# The kinds of mismatch, in the order the page lists them.
PAID_THERE_NOT_HERE = "paid_there_not_here"
PAID_HERE_NOT_THERE = "paid_here_not_there"
AMOUNT_DIFFERS = "amount_differs"
REFUNDED_HERE_NOT_THERE = "refunded_here_not_there"
REFUNDED_THERE_NOT_HERE = "refunded_there_not_here"
MISMATCH_LABELS = {
    PAID_THERE_NOT_HERE: N_("Paid at the gateway, not paid here"),
    PAID_HERE_NOT_THERE: N_("Paid here, not paid at the gateway"),
    AMOUNT_DIFFERS: N_("The amounts differ"),
    REFUNDED_HERE_NOT_THERE: N_("Refunded here, not (fully) at the gateway"),
    REFUNDED_THERE_NOT_HERE: N_("Refunded at the gateway, not here"),
}


def online_providers() -> dict[str, PaymentProvider]:
    """The enabled providers whose gateway can be asked about a payment: those whose class implements
    ``status`` (the desk and the sandbox have nobody to ask)."""
    found = {}
    for name in providers.enabled_providers():
        provider = providers.get_provider(name)
        if type(provider).status is not PaymentProvider.status:
            found[name] = provider
    return found


@dataclass(frozen=True)
class Read:
    """What a gateway answered about one payment: a report, or None when it does not know the payment."""

    payment_id: UUID
    provider: str
    report: GatewayReport | None

    @property
    def money_taken(self) -> bool:
        """The gateway took the money: it settled, or settled and returned some of it since."""
        report = self.report
        return report is not None and (report.outcome is Outcome.COMPLETED or (report.refunded_amount or 0) > 0)


async def _ask(rows: list[asyncpg.Record], online: dict[str, PaymentProvider]) -> list[Read]:
    """Ask the gateways about ``rows`` (payment_id, payment_provider, provider_payment_id), a few at once. A
    gateway that does not answer is not asked again in this run (each call would wait for its timeout);
    its payments are asked about by a later run."""
    limit = asyncio.Semaphore(GATEWAY_CONCURRENCY)
    down: set[str] = set()

    async def one(row: asyncpg.Record) -> Read | None:
        name = row["payment_provider"]
        async with limit:
            if name in down or name not in online:
                return None
            try:
                report = await online[name].status(row["payment_id"], row["provider_payment_id"])
            except GatewayUnavailable:
                down.add(name)
                log.warning("gateway not answering a status read", provider=name, payment_id=str(row["payment_id"]))
                return None
            except Exception:  # a provider's bug must not stop the others' reads
                down.add(name)
                log.exception("gateway status read failed", provider=name, payment_id=str(row["payment_id"]))
                return None
        return Read(row["payment_id"], name, report)

    return [read for read in await asyncio.gather(*(one(row) for row in rows)) if read is not None]


async def _record(clinic_id: UUID, reads: list[Read]) -> None:
    """Keep the clinic's batch of reads (one statement), and the fees they report on the payments."""
    if not reads:
        return
    reports = [read.report for read in reads]
    await sql.execute(
        rq.RECORD_READS, clinic_id,
        [read.payment_id for read in reads],
        [read.provider for read in reads],
        [report is not None for report in reports],
        [read.money_taken for read in reads],
        [report.outcome.value if report else None for report in reports],
        [_gateway_status(report) for report in reports],
        [report.gross_amount if report else None for report in reports],
        [report.refunded_amount if report else None for report in reports],
        [report.fee if report else None for report in reports],
        [report.payment_method if report else None for report in reports],
        [json.dumps(report.details) if report else None for report in reports],
    )
    fees = [(read.payment_id, read.report.fee) for read in reads if read.report and read.report.fee is not None]
    if fees:
        await sql.execute(rq.STORE_FEES, clinic_id, [payment for payment, _ in fees], [fee for _, fee in fees])


def _gateway_status(report: GatewayReport | None) -> str | None:
    """The gateway's own word for the payment's state (Midtrans' transaction_status, Xendit's status)."""
    if report is None:
        return None
    status = report.details.get("transaction_status") or report.details.get("status")
    return str(status)[:40] if status else report.outcome.value


# ------------------------------------------------------------------ payments still pending (a job)


async def ask_about_pending_payments() -> dict[str, int]:
    """Ask the gateways about online payments still pending ``PENDING_MIN_AGE`` after they started, whose
    booking still waits for payment, and apply what they say (``services.apply_gateway_report``: idempotent,
    so a notification arriving meanwhile changes nothing twice). Clinic by clinic: the candidates are read,
    the gateways asked (outside any transaction), then the answers recorded and applied. Returns counts:
    asked, answered, changed, refused (an answer the payment rules refused, e.g. another amount)."""
    counts: Counter[str] = Counter(asked=0, answered=0, changed=0, refused=0)
    online = online_providers()
    if not online:
        return dict(counts)
    names = list(online)
    min_age = PENDING_MIN_AGE.total_seconds()
    for clinic in await sql.fetch(rq.CLINICS_WITH_PENDING_ONLINE_PAYMENTS, names, min_age):
        clinic_id = clinic["clinic_id"]
        candidates = await sql.fetch(rq.PENDING_ONLINE_PAYMENTS, clinic_id, names, min_age,
                                     ASK_AGAIN_AFTER.total_seconds(), PENDING_BATCH)
        reads = await _ask(candidates, online)
        await _record(clinic_id, reads)
        counts["asked"] += len(candidates)
        counts["answered"] += len(reads)
        for read in reads:
            # Nothing to apply: the gateway does not know it yet, or it is still waiting (the read is kept).
            if read.report is None or read.report.outcome is Outcome.NO_CHANGE:
                continue
            try:
                applied = await services.apply_gateway_report(read.provider, read.payment_id, read.report)
            except (Conflict, InvalidInput, NotFound) as exc:
                # E.g. the gateway took another amount: left as it is; the day's report lists it.
                counts["refused"] += 1
                log.error("gateway status read not applied", payment_id=str(read.payment_id),
                          provider=read.provider, reason=str(exc.detail))
                continue
            if applied["changed"]:
                counts["changed"] += 1
                log.info("payment changed by a status read", payment_id=str(read.payment_id),
                         status=applied["status"])
    return dict(counts)


# ------------------------------------------------------------------ a clinic's day


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The clinic-local ``day`` as [start, end) instants."""
    start = datetime.combine(day, time(0), ZoneInfo(zone))
    return start, datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(zone))


def yesterday(zone: str, now: datetime | None = None) -> date:
    """The clinic's previous local day: the last whole day, the one the daily run reconciles."""
    return clock.clinic_today(zone, now) - timedelta(days=1)


async def reconcile_day(day: date | None = None, clinic_id: UUID | None = None, again: bool = False) -> dict[str, int]:
    """Ask the gateways about each clinic's online payments of ``day`` (clinic-local; default: each clinic's
    yesterday) and those with a refund requested that day, and keep the answers for ``day_report``. A payment
    already read after the day ended is not asked again unless ``again`` (its answer already covers the
    day). Only ``clinic_id`` when given. Nothing is applied: the report lists what disagrees. Returns counts."""
    counts: Counter[str] = Counter(clinics=0, asked=0, answered=0)
    online = online_providers()
    if not online:
        return dict(counts)
    names = list(online)
    for clinic in await sql.fetch(rq.CLINICS):
        if clinic_id is not None and clinic["clinic_id"] != clinic_id:
            continue
        the_day = day or yesterday(clinic["timezone"])
        start, end = day_bounds(the_day, clinic["timezone"])
        # A read from after this instant already saw the whole day.
        read_since = clock.utc_now() if again else end
        rows = await sql.fetch(rq.PAYMENTS_OF_DAY_TO_READ, clinic["clinic_id"], start, end, read_since, names, DAY_BATCH)
        reads = await _ask(rows, online)
        await _record(clinic["clinic_id"], reads)
        counts["clinics"] += 1
        counts["asked"] += len(rows)
        counts["answered"] += len(reads)
    return dict(counts)


async def reconcile_yesterday() -> dict[str, int]:
    """The daily job: every clinic's yesterday (``reconcile_day``)."""
    return await reconcile_day()


async def check_again(manager: CurrentUser, clinic_id: UUID, day: date) -> dict[str, int]:
    """A manager's "Check again": the clinic's day asked about afresh, at most ``RECHECK_RATE`` per manager."""
    _require_manager_of(manager, clinic_id)
    await rate_limit.hit(f"reconciliation-recheck:user:{manager.user_id}", RECHECK_RATE, RECHECK_TOO_SOON)
    return await reconcile_day(day, clinic_id, again=True)


@dataclass(frozen=True)
class Mismatch:
    """One disagreement between a payment and the gateway's latest word about it."""

    kind: str
    payment_id: UUID
    booking_code: str
    provider: str
    payment_method: str
    our_status: str
    amount: Decimal
    currency: str
    gateway_status: str | None
    gateway_amount: Decimal | None
    our_refunded: Decimal
    gateway_refunded: Decimal
    refund_states: str | None
    created_at: datetime
    read_at: datetime

    @property
    def label(self) -> str:
        return MISMATCH_LABELS[self.kind]


@dataclass(frozen=True)
class DayReport:
    clinic: dict
    day: date
    payments: int  # online payments of the day (and those with a refund requested that day)
    checked: int  # ...of which the gateway was asked about
    mismatches: list[Mismatch]
    last_read_at: datetime | None

    @property
    def unchecked(self) -> int:
        return self.payments - self.checked


def mismatch_kinds(row: dict | asyncpg.Record) -> list[str]:
    """How one payment (a row of DAY_BESIDE_GATEWAY) disagrees with the gateway's latest read of it; none
    without a read. Refunds paid by hand (or waiting to be) never reach the gateway, so they are not expected
    there; refunds still on their way (requested, sent) are, and show until the gateway has made them."""
    if row["read_at"] is None:
        return []
    settled_here = row["status"] in services.SETTLED
    taken = bool(row["money_taken"])
    kinds = []
    if taken and not settled_here:
        kinds.append(PAID_THERE_NOT_HERE)
    if settled_here and not taken:
        kinds.append(PAID_HERE_NOT_THERE)
    if taken and row["gross_amount"] is not None and row["gross_amount"] != row["amount"]:
        kinds.append(AMOUNT_DIFFERS)
    if taken and settled_here:
        at_gateway = row["refunded_amount"] or Decimal(0)
        recorded = row["refund_amount"] or Decimal(0)
        expected = max(row["refunds_by_gateway"], recorded - row["refunds_by_hand"])
        if expected > at_gateway:
            kinds.append(REFUNDED_HERE_NOT_THERE)
        elif at_gateway > recorded:
            kinds.append(REFUNDED_THERE_NOT_HERE)
    return kinds


def _require_manager_of(actor: CurrentUser, clinic_id: UUID) -> None:
    # The same answer as for a clinic that does not exist: ids cannot be probed.
    if not actor.manages_clinic(clinic_id):
        raise NotFound(N_("No such clinic."))


async def day_report(actor: CurrentUser, clinic: dict, day: date) -> DayReport:
    """The clinic's ``day`` beside the gateways' latest answers: its mismatches (``mismatch_kinds``), in the
    order of the payments, and how many payments were asked about. Managers of the clinic only (404 else)."""
    _require_manager_of(actor, clinic["clinic_id"])
    start, end = day_bounds(day, clinic["timezone"])
    # Every provider that has a gateway to ask, configured now or not: an old day may have payments of one
    # switched off since, and their reads are still worth showing.
    rows = await sql.fetch(rq.DAY_BESIDE_GATEWAY, clinic["clinic_id"], start, end, _online_provider_names())
    mismatches = [
        Mismatch(kind=kind, payment_id=row["payment_id"], booking_code=display_booking_code(row["booking_code"]),
                 provider=row["payment_provider"], payment_method=row["payment_method"], our_status=row["status"],
                 amount=row["amount"], currency=row["currency"], gateway_status=row["gateway_status"],
                 gateway_amount=row["gross_amount"], our_refunded=row["refund_amount"] or Decimal(0),
                 gateway_refunded=row["refunded_amount"] or Decimal(0), refund_states=row["refund_states"],
                 created_at=row["created_at"], read_at=row["read_at"])
        for row in rows for kind in mismatch_kinds(row)
    ]
    read_times = [row["read_at"] for row in rows if row["read_at"] is not None]
    return DayReport(clinic=clinic, day=day, payments=len(rows), checked=len(read_times), mismatches=mismatches,
                     last_read_at=max(read_times, default=None))


def _online_provider_names() -> list[str]:
    """The providers that have a gateway to ask, whether configured now or not."""
    return [name for name, kind in providers._PROVIDERS.items() if kind.status is not PaymentProvider.status]


CSV_HEADER = ("date", "clinic", "mismatch", "payment_id", "booking_code", "provider", "payment_method",
              "our_status", "amount", "currency", "gateway_status", "gateway_amount", "our_refunded",
              "gateway_refunded", "refund_states", "created_at", "read_at")


def report_csv(report: DayReport) -> str:
    """The day's mismatches as CSV: one row per mismatch, the kind as its code, ISO dates and times, money
    as plain numbers with two decimals, text made spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for item in report.mismatches:
        writer.writerow((
            report.day.isoformat(), spreadsheet_safe(report.clinic["name"]), item.kind, str(item.payment_id),
            item.booking_code, item.provider, spreadsheet_safe(item.payment_method), item.our_status,
            f"{item.amount:.2f}", item.currency, spreadsheet_safe(item.gateway_status or ""),
            "" if item.gateway_amount is None else f"{item.gateway_amount:.2f}", f"{item.our_refunded:.2f}",
            f"{item.gateway_refunded:.2f}", item.refund_states or "", item.created_at.isoformat(),
            item.read_at.isoformat(),
        ))
    return out.getvalue()


def csv_filename(report: DayReport) -> str:
    """``vetbook-reconciliation-<clinic>-<day>.csv``, the clinic's name in ASCII letters, digits and dashes
    (a header-safe name), or its id when nothing of the name is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", report.clinic["name"].lower()).strip("-")[:40] or str(report.clinic["clinic_id"])
    return f"vetbook-reconciliation-{slug}-{report.day.isoformat()}.csv"


def parse_day(value: str | None, clinic: dict, now: datetime | None = None) -> date:
    """``?date=YYYY-MM-DD`` up to the clinic's today, or the clinic's yesterday when absent; 422 otherwise."""
    if not value:
        return yesterday(clinic["timezone"], now)
    day = day_or_none(value)
    if day is None:
        raise InvalidInput({"date": N_("Enter a date as YYYY-MM-DD.")}, detail=N_("Enter a date as YYYY-MM-DD."))
    if day > clock.clinic_today(clinic["timezone"], now):
        raise InvalidInput({"date": N_("Choose a day that has begun.")}, detail=N_("Choose a day that has begun."))
    return day
