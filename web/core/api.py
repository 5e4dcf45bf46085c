"""Operational endpoints."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.exceptions import HTTPException
from piccolo.engine import engine_finder

from web.core.readiness import readiness
from web.live.broker import get_broker


class HealthController(Controller):
    path = "/api/v1"
    tags = ["operations"]
    security = []

    @get("/health", name="health")
    async def health(self) -> dict[str, str]:
        """Liveness and database reachability."""
        try:
            await engine_finder().run_ddl("SELECT 1")
        except Exception as exc:  # any failure to reach the database is reported, not raised as a 500
            raise HTTPException(status_code=503, detail="database unreachable") from exc
        return {"status": "ok", "database": "ok"}

    @get("/ready", name="ready")
    async def ready(self) -> Response[dict]:
        """Readiness: the primary (reachable and not in recovery: else 503), each replica with its lag,
        and the live-update listener. See web/core/readiness.py."""
        broker = get_broker()
        report = await readiness(engine_finder(), broker.state, broker.subscriber_count)
        return Response(report, status_code=200 if report["ready"] else 503, headers={"Cache-Control": "no-store"})
