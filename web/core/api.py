"""Operational endpoints."""

from __future__ import annotations

from litestar import Controller, get
from litestar.exceptions import HTTPException
from piccolo.engine import engine_finder


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
