"""Read routing (web/core/routing.py) against real nodes: a primary and two hot standbys started by the
launcher. Lag-tolerant reads take turns on the replicas and never reach the primary while they are fresh;
a stopped replica is skipped; a replica whose replay is paused falls behind by WAL position and is
skipped; reads inside a transaction stay on the primary. The lag arithmetic on its own, too."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from web.core import routing
from web.core.database import close_pools, create_engine, open_pools
from web.core.embedded_postgres import LocalPostgres

WHO_ANSWERS = "SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby"


def test_a_replica_is_as_old_as_the_newest_primary_position_it_has_replayed() -> None:
    history = routing.WalHistory()
    for second, position in enumerate([100, 200, 300, 400]):
        history.add(float(second), position)

    assert history.lag_seconds(now=3.5, replayed=400) == 0.0  # past the latest sample
    assert history.lag_seconds(now=3.5, replayed=350) == 1.5  # fresh as the primary at second 2
    assert history.lag_seconds(now=3.5, replayed=100) == 3.5
    assert history.lag_seconds(now=3.5, replayed=50) is None  # older than anything kept
    assert routing.lsn("16/B374D848") - routing.lsn("16/B374D800") == 0x48


@pytest.fixture
def cluster(tmp_path: Path):
    primary = LocalPostgres(tmp_path / "primary", fast=True)
    standbys = [LocalPostgres(tmp_path / f"standby-{n}", fast=True, standby_of=primary) for n in (1, 2)]
    try:
        primary.start()
        for standby in standbys:
            standby.start()
        yield primary, standbys
    finally:
        for server in (*standbys, primary):
            server.destroy()


async def _answered_by(engine, reads: int) -> Counter:
    async def on_primary():
        async with engine.pool.acquire() as connection:
            return await connection.fetch(WHO_ANSWERS)

    seen = Counter()
    for _ in range(reads):
        [row] = await routing.fetch_lag_tolerant(engine, on_primary, WHO_ANSWERS)
        seen[(row["port"], row["standby"])] += 1
    return seen


async def test_lag_tolerant_reads_take_turns_on_fresh_replicas_and_fall_back(cluster) -> None:
    primary, (first, second) = cluster
    engine = create_engine(primary.url(), f"{first.url()}, {second.url()}")
    await open_pools(engine, 1, 2)
    try:
        replicas = routing.replica_set(engine, max_lag_seconds=1.0)
        assert [replica.name for replica in replicas.replicas] == ["replica-1", "replica-2"]
        # Not measured yet: the primary answers.
        assert await _answered_by(engine, 3) == Counter({(primary.port, False): 3})

        history = routing.WalHistory()  # the watcher's memory of the primary's positions, kept across rounds
        await routing.watch_replicas(engine, history, rounds=2)
        assert await _answered_by(engine, 10) == Counter({(first.port, True): 5, (second.port, True): 5})

        async with engine.transaction():
            assert await _answered_by(engine, 2) == Counter({(primary.port, False): 2})

        second.stop()
        assert await _answered_by(engine, 6) == Counter({(first.port, True): 6})

        first.pause_replay()
        primary.psql("CREATE TABLE written_while_paused (n int)", database="vetbook")
        for _ in range(4):  # 4 rounds of WATCH_SECONDS: the paused replica falls past the 1 s bound
            await routing.watch_replicas(engine, history, rounds=1)
        assert replicas.replicas[0].lag_seconds > 1.0, replicas.replicas[0]
        assert replicas.replicas[1].lag_seconds is None  # stopped: unknown
        assert await _answered_by(engine, 3) == Counter({(primary.port, False): 3})

        first.resume_replay()
        first.wait_for_replay(primary.wal_position())
        await routing.watch_replicas(engine, history, rounds=1)
        assert await _answered_by(engine, 2) == Counter({(first.port, True): 2})
    finally:
        routing._replica_sets.pop(engine, None)
        await close_pools(engine)


def test_the_seen_cookie_is_signed_and_short_lived() -> None:
    value = routing.seen_cookie_value(123456, now=1000.0, secret="s3cret")

    assert routing.position_to_see(value, now=1000.0 + routing.SEEN_SECONDS - 1, secret="s3cret") == 123456
    assert routing.position_to_see(value, now=1000.0 + routing.SEEN_SECONDS + 1, secret="s3cret") is None
    assert routing.position_to_see(value, now=1000.0, secret="another") is None
    position, expiry, signature = value.split(".")
    assert routing.position_to_see(f"{int(position) + 1}.{expiry}.{signature}", now=1000.0, secret="s3cret") is None
    for malformed in ("", "x", "1.2", "a.b.c", "1.2.3.4"):
        assert routing.position_to_see(malformed, now=1000.0, secret="s3cret") is None


async def test_after_a_write_a_replica_answers_only_once_it_has_replayed_it(cluster) -> None:
    primary, (first, second) = cluster
    second.stop()
    engine = create_engine(primary.url(), first.url())
    await open_pools(engine, 1, 2)
    try:
        routing.replica_set(engine, max_lag_seconds=60.0)
        history = routing.WalHistory()
        # Two rounds: with one sample only, a replica a record behind it (the server writes some WAL of its
        # own) would stay "unknown" and unused; a second sample dates it.
        first.wait_for_replay(primary.wal_position())
        await routing.watch_replicas(engine, history, rounds=2)
        first.pause_replay()
        primary.psql("CREATE TABLE booked_just_now (n int)", database="vetbook")
        written_at = routing.lsn(primary.wal_position())

        # Someone else (no position to see) still reads the replica: within the lag bound.
        assert await _answered_by(engine, 1) == Counter({(first.port, True): 1})
        token = routing._must_see.set(written_at)
        try:
            # The writer: the replica has not replayed the write, so the primary answers.
            assert await _answered_by(engine, 2) == Counter({(primary.port, False): 2})
            first.resume_replay()
            first.wait_for_replay(primary.wal_position())
            assert await _answered_by(engine, 2) == Counter({(first.port, True): 2})
        finally:
            routing._must_see.reset(token)
    finally:
        routing._replica_sets.pop(engine, None)
        await close_pools(engine)


async def test_a_write_hands_out_its_position_and_the_next_read_honours_it(cluster, monkeypatch) -> None:
    import httpx
    from litestar import Litestar, get, post

    from web.core import sql

    primary, (first, second) = cluster
    second.stop()
    engine = create_engine(primary.url(), first.url())
    await open_pools(engine, 1, 2)
    monkeypatch.setattr(sql, "app_engine", lambda: engine)

    @post("/write", status_code=201)
    async def write() -> None:
        async with engine.pool.acquire() as connection:
            await connection.execute("CREATE TABLE IF NOT EXISTS written (n int); INSERT INTO written VALUES (1)")

    @get("/read")
    async def read() -> dict:
        async def on_primary():
            async with engine.pool.acquire() as connection:
                return await connection.fetch(WHO_ANSWERS)

        [row] = await routing.fetch_lag_tolerant(engine, on_primary, WHO_ANSWERS)
        return {"standby": row["standby"]}

    app = Litestar([write, read], middleware=[routing.read_your_writes_middleware])
    try:
        routing.replica_set(engine, max_lag_seconds=60.0)
        first.wait_for_replay(primary.wal_position())
        await routing.watch_replicas(engine, routing.WalHistory(), rounds=2)  # (two: see the test above)
        first.pause_replay()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as writer, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as stranger:
            written = await writer.post("/write")
            assert written.status_code == 201
            assert routing.SEEN_COOKIE in written.cookies
            assert "HttpOnly" in written.headers["set-cookie"]

            assert (await writer.get("/read")).json() == {"standby": False}  # the replica is behind the write
            assert (await stranger.get("/read")).json() == {"standby": True}  # others read the replica
            genuine = written.cookies[routing.SEEN_COOKIE]
            position, expiry, _signature = genuine.split(".")
            stranger.cookies.set(routing.SEEN_COOKIE, f"{position}.{expiry}.{'0' * 32}")
            assert (await stranger.get("/read")).json() == {"standby": True}  # a forged position is ignored

            first.resume_replay()
            first.wait_for_replay(primary.wal_position())
            assert (await writer.get("/read")).json() == {"standby": True}
    finally:
        routing._replica_sets.pop(engine, None)
        await close_pools(engine)
