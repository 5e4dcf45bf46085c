"""Metrics (issue 14, web/core/metrics.py): /metrics of an app with two worker processes adds up what both
served (requests by grouped route, holds by outcome); it exists only for the metrics token."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import cloned_database
from tests.db.factories import (
    local_start,
    make_clinic,
    make_pet,
    make_service,
    make_session,
    make_slot,
    make_user,
)
from tests.servers import running_app

TOKEN = "metrics-test-token-0123456789"


def _samples(text: str) -> dict[str, list]:
    found = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name].append(sample)
    return found


def _total(samples: dict, name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


async def _world(url: str, owners: int) -> tuple[dict, list[tuple[str, str]]]:
    connection = await asyncpg.connect(url)
    try:
        clinic = await make_clinic(connection)
        service = await make_service(connection, clinic)
        slot = await make_slot(connection, clinic, service, None, start=local_start(clinic, 3, 10), capacity=owners,
                               remaining=owners)
        people = []
        for _ in range(owners):
            owner = await make_user(connection)
            pet = await make_pet(connection, owner)
            people.append((await make_session(connection, owner, "api"), str(pet["pet_id"])))
        return slot, people
    finally:
        await connection.close()


async def test_metrics_of_two_workers_add_up_and_need_the_token(pg_server, template_database, tmp_path: Path) -> None:
    with cloned_database(pg_server, template_database, "metrics") as url:
        slot, people = await _world(url, owners=4)
        env = {"VETBOOK_METRICS_TOKEN": TOKEN}
        with running_app(url, tmp_path / "app.log", env=env, extra_args=("--workers", "2")) as app:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=30) as http:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                assert (await http.get("/metrics")).status_code == 404
                assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 404
                before = _samples((await http.get("/metrics", headers=auth)).text)

                # Concurrent requests on new connections: both workers answer some.
                sent = 0
                for _ in range(10):
                    batch = await asyncio.gather(*(
                        http.get("/api/v1/health", headers={"Connection": "close"}) for _ in range(10)))
                    assert all(answer.status_code == 200 for answer in batch)
                    sent += len(batch)
                held = await asyncio.gather(*(
                    http.post("/api/v1/reservations", headers={"Authorization": f"Bearer {token}"},
                              json={"slot_id": str(slot["slot_id"]), "pet_id": pet}) for token, pet in people))
                assert [answer.status_code for answer in held] == [201] * len(people)
                # Scrapes on new connections, answered by either worker, all see the sum of both.
                scrapes = [_samples((await http.get("/metrics", headers=auth | {"Connection": "close"})).text)
                           for _ in range(6)]
    after = scrapes[-1]
    # (The supervising parent process imports the metrics too, but never starts an app: value 0.)
    assert len({s.labels["pid"] for s in after["vetbook_worker_started_seconds"] if s.value > 0}) == 2
    health = {"path": "/api/v1/health", "method": "GET", "status_code": "200"}
    for scraped in scrapes:
        assert _total(scraped, "vetbook_requests_total", **health) - _total(
            before, "vetbook_requests_total", **health) == sent
    # Grouped by the route's template, never by the raw path with its ids.
    assert not [s for s in after["vetbook_requests_total"] if str(slot["slot_id"]) in s.labels.get("path", "")]
    assert _total(after, "vetbook_holds_total", outcome="taken") - _total(before, "vetbook_holds_total",
                                                                          outcome="taken") == len(people)
    assert _total(after, "vetbook_db_pool_wait_seconds_count") > 0
    assert "vetbook_wal_last_archived_age_seconds" in after
