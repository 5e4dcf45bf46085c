"""The Litestar application: templates, static files, controllers and the lifespan (pool, jobs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine as Jinja
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from piccolo.engine import engine_finder

from web.clinics.controllers import ClinicPagesController
from web.core import formatting
from web.core.controllers import HealthController
from web.core.jobs import Job, Scheduler
from web.core.maintenance import ensure_partitions
from web.settings import PROJECT_ROOT, get_settings

PARTITION_JOB_LOCK = 0x7E7B00C1


def _configure_jinja(engine: Jinja) -> None:
    engine.engine.filters["money"] = formatting.money
    engine.engine.filters["zone_abbreviation"] = formatting.zone_abbreviation


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings = get_settings()
    engine = engine_finder()
    await engine.start_connection_pool(min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    scheduler = Scheduler(
        [Job("ensure_partitions", every_seconds=24 * 3600, run=ensure_partitions, lock_key=PARTITION_JOB_LOCK)]
    )
    scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()
        await engine.close_connection_pool()


def create_app() -> Litestar:
    template_config = TemplateConfig(
        directory=PROJECT_ROOT / "templates", engine=Jinja, engine_callback=_configure_jinja
    )
    return Litestar(
        route_handlers=[
            ClinicPagesController,
            HealthController,
            create_static_files_router(path="/static", directories=[PROJECT_ROOT / "static"], name="static"),
        ],
        template_config=template_config,
        plugins=[HTMXPlugin()],
        lifespan=[lifespan],
    )
