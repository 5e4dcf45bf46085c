"""Readiness (/api/v1/ready, web/core/readiness.py) against real nodes: a primary and a hot standby started
by the launcher. The standby's lag is made real by pausing its replay; a stopped standby leaves the process
ready; a primary that is gone, or a node still in recovery, makes it unready."""

from __future__ import annotations

from pathlib import Path

import pytest

from web.core.database import close_pools, create_engine, open_pools
from web.core.embedded_postgres import LocalPostgres
from web.core.readiness import readiness


async def test_the_endpoint_reports_the_primary_and_the_listener(client) -> None:
    response = await client.get("/api/v1/ready")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True
    assert body["primary"]["reachable"] is True and body["primary"]["in_recovery"] is False
    assert body["primary"]["wal_position"].count("/") == 1
    assert body["replicas"] == []
    assert body["listener"]["state"] in ("idle", "listening", "reconnecting")
    assert response.headers["cache-control"] == "no-store"


@pytest.fixture
def primary_and_standby(tmp_path: Path):
    primary = LocalPostgres(tmp_path / "primary", fast=True)
    standby = LocalPostgres(tmp_path / "standby", fast=True, standby_of=primary)
    try:
        primary.start()
        primary.psql("CREATE TABLE filler (payload text)", database="vetbook")
        standby.start()
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


async def test_replica_lag_down_and_a_lost_primary_are_reported(primary_and_standby) -> None:
    primary, standby = primary_and_standby
    engine = create_engine(primary.url(), standby.url())
    await open_pools(engine, 1, 2)
    try:
        primary.psql("INSERT INTO filler VALUES ('replayed before the pause')", database="vetbook")
        standby.wait_for_replay(primary.wal_position())
        caught_up = await readiness(engine, "idle", 0)
        assert caught_up["ready"] is True
        [replica] = caught_up["replicas"]
        assert replica["reachable"] is True and replica["in_recovery"] is True
        assert replica["lag_bytes"] < 64 * 1024, replica
        assert replica["lag_seconds"] == 0.0 or replica["lag_bytes"] > 0, replica

        standby.pause_replay()
        primary.psql("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000)",
                     database="vetbook")
        behind = (await readiness(engine, "idle", 0))["replicas"][0]
        assert behind["lag_bytes"] > 1_000_000, behind
        assert behind["lag_seconds"] > 0, behind

        standby.resume_replay()
        standby.wait_for_replay(primary.wal_position())
        assert (await readiness(engine, "idle", 0))["replicas"][0]["lag_bytes"] < behind["lag_bytes"]

        standby.stop()
        without_replica = await readiness(engine, "listening", 3)
        assert without_replica["ready"] is True
        assert without_replica["replicas"] == [{"name": "replica-1", "reachable": False}]
        assert without_replica["listener"] == {"state": "listening", "subscribers": 3}

        primary.stop()
        gone = await readiness(engine, "reconnecting", 0)
        assert gone["ready"] is False
        assert gone["primary"] == {"reachable": False, "in_recovery": None, "wal_position": None}
    finally:
        await close_pools(engine)


async def test_a_standby_named_as_the_primary_is_not_ready(primary_and_standby) -> None:
    _primary, standby = primary_and_standby
    engine = create_engine(standby.url())
    await open_pools(engine, 1, 1)
    try:
        report = await readiness(engine, "idle", 0)
    finally:
        await close_pools(engine)

    assert report["ready"] is False
    assert report["primary"] == {"reachable": True, "in_recovery": True, "wal_position": None}
