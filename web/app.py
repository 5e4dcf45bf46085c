"""The Litestar application: templates, static files, controllers, security, errors and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from piccolo.engine import engine_finder

from web.accounts import login_throttle, passwords
from web.accounts.api import AuthApiController, MeApiController, PetApiController
from web.accounts.auth import authentication_middleware, role_name
from web.accounts.pages import AccountPagesController, PetPagesController, StaffPagesController
from web.accounts.validation import species_name
from web.analytics.pages import AnalyticsPagesController
from web.analytics.services import refresh_booking_analytics
from web.booking import services as booking_services
from web.booking.api import BookingApiController, ReservationApiController
from web.booking.pages.bookings import BookingPagesController
from web.booking.pages.finder import SlotFinderController
from web.booking.pages.holds import ReservationPagesController
from web.booking.pages.payment import PayPagesController
from web.clinics.api import ClinicApiController
from web.clinics.pages import ClinicPagesController
from web.core import metrics, rate_limit, routing, templating
from web.core.api import HealthController
from web.core.connections import connection_per_request_middleware
from web.core.database import close_pools, open_pools
from web.core.errors import EXCEPTION_HANDLERS
from web.core.failover import retry_when_database_away_middleware
from web.core.jobs import Job, Scheduler
from web.core.locale_middleware import locale_middleware
from web.core.logging import configure_logging, request_id_middleware
from web.core.maintenance import ensure_partitions
from web.core.metrics import MetricsController, prometheus_config
from web.core.pages import LanguageController
from web.core.security import csrf_config, security_headers_middleware
from web.desk.pages import DeskPagesController
from web.live.broker import close_broker
from web.live.streams import LiveController
from web.payments import reconciliation, refunds
from web.payments.api import PaymentApiController
from web.payments.pages import SandboxPagesController
from web.payments.reconciliation_pages import ReconciliationPagesController
from web.payments.refund_pages import RefundPagesController
from web.settings import PROJECT_ROOT, get_settings
from web.slots.api import SlotApiController
from web.slots.pages import SlotAdminPagesController

PARTITION_JOB_LOCK = 0x7E7B00C1
RATE_LIMIT_CLEANUP_LOCK = 0x7E7B00C2
HOLD_EXPIRY_LOCK = 0x7E7B00C3
UNPAID_EXPIRY_LOCK = 0x7E7B00C4
ANALYTICS_REFRESH_LOCK = 0x7E7B00C5
# The reconciliation jobs call gateways: they run under leases (holds_transaction=False); their keys only keep
# every job's key distinct.
PENDING_PAYMENTS_LOCK = 0x7E7B00D1
GATEWAY_DAY_LOCK = 0x7E7B00D2
# Unused while the job holds no transaction (it runs under a lease, web/core/jobs.py); kept unique all the same.
REFUND_SENDING_LOCK = 0x7E7B00C6
MAX_REQUEST_BODY_BYTES = 1_000_000


def _configure_jinja(engine: JinjaTemplateEngine) -> None:
    # gettext (`_`, `{% trans %}`) in the request's language, and the money/date/time filters (web.core.templating).
    templating.configure_jinja(engine.engine)
    engine.engine.filters["species_name"] = species_name
    engine.engine.filters["role_name"] = role_name


async def _forget_old_counters() -> None:
    await rate_limit.forget_old_windows()
    await login_throttle.forget_old_failures()


def background_jobs() -> list[Job]:
    return [
        Job("ensure_partitions", every_seconds=24 * 3600, run=ensure_partitions, lock_key=PARTITION_JOB_LOCK),
        Job("forget_rate_limit_windows", every_seconds=3600, run=_forget_old_counters,
            lock_key=RATE_LIMIT_CLEANUP_LOCK),
        Job("expire_holds", every_seconds=5, run=booking_services.expire_holds, lock_key=HOLD_EXPIRY_LOCK),
        Job("expire_unpaid_bookings", every_seconds=30, run=booking_services.expire_unpaid_bookings,
            lock_key=UNPAID_EXPIRY_LOCK),
        Job("refresh_booking_analytics", every_seconds=3600, run=refresh_booking_analytics,
            lock_key=ANALYTICS_REFRESH_LOCK),
        Job("ask_about_pending_payments", every_seconds=60, run=reconciliation.ask_about_pending_payments,
            lock_key=PENDING_PAYMENTS_LOCK, holds_transaction=False, lease_seconds=120),
        # Hourly: each clinic's day ends at its own midnight (WIB, WITA, WIT); a run after that reads only what
        # no earlier run read since, so most runs ask nothing.
        Job("reconcile_gateway_day", every_seconds=3600, run=reconciliation.reconcile_yesterday,
            lock_key=GATEWAY_DAY_LOCK, holds_transaction=False, lease_seconds=300),
        # Outside any transaction: it calls the gateways (web/payments/refunds.py); two runs at once would still
        # never send one refund twice (each refund is claimed by one statement before its send).
        Job("send_refunds", every_seconds=30, run=refunds.send_due_refunds, lock_key=REFUND_SENDING_LOCK,
            holds_transaction=False),
    ]


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings = get_settings()
    engine = engine_finder()
    await open_pools(engine, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    # The stand-in hash of failed logins, made before the first one (see web/accounts/passwords.py).
    await asyncio.to_thread(passwords.warm_up)
    scheduler = Scheduler(background_jobs())
    scheduler.start()
    metrics.WORKER_STARTED.set_to_current_time()
    # Every process measures its replicas' lag itself (web/core/routing.py): a replica is used only then.
    watcher = asyncio.create_task(routing.watch_replicas(engine), name="vetbook-replica-watch") \
        if engine.extra_nodes else None
    try:
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await close_broker()
        await scheduler.stop()
        await close_pools(engine)


class UnsafeSettings(SystemExit):
    """Settings that must never run together (``Settings.startup_problems``): the app does not start."""


def create_app() -> Litestar:
    configure_logging()
    metrics_config = prometheus_config()
    problems = get_settings().startup_problems()
    if problems:
        raise UnsafeSettings("VetBook refuses to start:\n  " + "\n  ".join(problems))
    template_config = TemplateConfig(
        directory=PROJECT_ROOT / "templates", engine=JinjaTemplateEngine, engine_callback=_configure_jinja
    )
    openapi_config = OpenAPIConfig(
        title="VetBook API",
        version="1.0.0",
        path="/api/schema",
        render_plugins=[JsonRenderPlugin()],
        components=Components(
            security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
        ),
        security=[{"BearerToken": []}],
    )
    return Litestar(
        route_handlers=[
            ClinicPagesController,
            AccountPagesController,
            PetPagesController,
            StaffPagesController,
            HealthController,
            AuthApiController,
            MeApiController,
            PetApiController,
            ClinicApiController,
            SlotApiController,
            SlotAdminPagesController,
            ReservationApiController,
            BookingApiController,
            PaymentApiController,
            SandboxPagesController,
            ReconciliationPagesController,
            RefundPagesController,
            BookingPagesController,
            PayPagesController,
            LanguageController,
            LiveController,
            MetricsController,
            AnalyticsPagesController,
            DeskPagesController,
            SlotFinderController,
            ReservationPagesController,
            create_static_files_router(
                path="/static", directories=[PROJECT_ROOT / "static"], name="static", include_in_schema=False
            ),
        ],
        template_config=template_config,
        plugins=[HTMXPlugin()],
        # The language middleware runs after authentication: a signed-in person's saved language counts.
        middleware=[
            # First: every later middleware's log lines carry the request's id.
            request_id_middleware,
            # Timed from here: a request's latency includes its database retries.
            metrics_config.middleware,
            DefineMiddleware(security_headers_middleware),
            # Outermost but for the headers: each run of a request gets a fresh connection of its own.
            retry_when_database_away_middleware,
            # Outside the request's connection: it runs after the connection is given back, when all of the
            # request's commits are done (web/core/routing.py, read-your-writes).
            routing.read_your_writes_middleware,
            # Outside authentication and rate limits: the session lookup runs on the request's connection too.
            connection_per_request_middleware,
            DefineMiddleware(authentication_middleware),
            DefineMiddleware(locale_middleware),
        ],
        csrf_config=csrf_config(),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config,
        request_max_body_size=MAX_REQUEST_BODY_BYTES,
        lifespan=[lifespan],
        # Logging is web/core/logging.py's (configured above); Litestar's default would replace the root
        # logger's handlers with its own format.
        logging_config=None,
    )
