"""Moving a clinic while its owners book: ``vetbook citus move-clinic`` gives the clinic a shard of its own
(isolate_tenant_to_new_shard) and moves it to the other worker (citus_move_shard_placement, by logical
replication), while owners hold and confirm through a real app process on the coordinator.

No request that would have succeeded fails (every hold and confirm answers 201: the slots have room for
all), no booking is lost (every booking a client was given is in the database, on the new node), and every
slot's places add up afterwards (``vetbook check``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx

from tests.conftest import connected, run_cli, vetbook_command
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

OWNERS_PER_CLINIC = 6
SERVER_ENV = {"VETBOOK_DB_POOL_MAX": "20", "VETBOOK_HOLD_RATE_LIMIT": "100000/600"}


async def _clinic_with_owners(conn, name: str) -> dict:
    clinic = await make_clinic(conn, name=name)
    service = await make_service(conn, clinic, price=Decimal("0"))
    slots = [await make_slot(conn, clinic, service, start=local_start(clinic, days_ahead=5, hour=hour),
                             capacity=500, remaining=500) for hour in range(8, 18)]
    owners = []
    for _ in range(OWNERS_PER_CLINIC):
        person = await make_user(conn)
        # Free visits: a confirm books at once, so every booking of the load is a finished one.
        pets = [await make_pet(conn, person) for _ in range(len(slots))]
        owners.append({"headers": {"Authorization": f"Bearer {await make_session(conn, person, kind='api')}"},
                       "pets": pets})
    return {"clinic": clinic, "slots": slots, "owners": owners}


async def _book_until(http: httpx.AsyncClient, owner: dict, slots: list[dict], stop: asyncio.Event,
                      answers: Counter, booked: list, failures: list) -> None:
    """One owner books one pet per slot, round after round (each pet at most once per slot), until told to
    stop: a hold, then its confirm."""
    round_number = 0
    while not stop.is_set() and round_number < len(owner["pets"]):
        pet = owner["pets"][round_number]
        for slot in slots:
            if stop.is_set():
                return
            held = await http.post("/api/v1/reservations", headers=owner["headers"],
                                   json={"slot_id": str(slot["slot_id"]), "pet_id": str(pet["pet_id"])})
            answers[("hold", held.status_code)] += 1
            if held.status_code != 201:
                failures.append(("hold", held.status_code, held.text[:300]))
                continue
            hold = held.json()
            confirmed = await http.post(f"/api/v1/reservations/{hold['reservation_id']}/confirm",
                                        headers=owner["headers"], json={"lock_token": hold["lock_token"]})
            answers[("confirm", confirmed.status_code)] += 1
            if confirmed.status_code != 201:
                failures.append(("confirm", confirmed.status_code, confirmed.text[:300]))
                continue
            booked.append(confirmed.json()["booking_id"])
        round_number += 1


async def test_a_clinic_moves_to_its_own_shard_on_the_other_worker_while_owners_book(
        citus_database_url: str, tmp_path: Path) -> None:
    async with connected(citus_database_url) as conn:
        moving = await _clinic_with_owners(conn, "Moving clinic")
        staying = await _clinic_with_owners(conn, "Staying clinic")
    clinic_id = str(moving["clinic"]["clinic_id"])

    dry = json.loads(run_cli(*vetbook_command("citus", "move-clinic", clinic_id, "--dry-run"),
                             database_url=citus_database_url).stdout)
    assert [step["step"] for step in dry["plan"]] == ["isolate", "move"]
    source, target = dry["plan"][1]["from"], dry["plan"][1]["to"]
    assert source != target
    unchanged = json.loads(run_cli(*vetbook_command("citus", "placement", clinic_id),
                                   database_url=citus_database_url).stdout)
    assert (unchanged["node"], unchanged["isolated"]) == (source, False)

    answers: Counter = Counter()
    booked: list = []
    failures: list = []
    stop = asyncio.Event()
    with running_app(citus_database_url, tmp_path / "app.log", env=SERVER_ENV) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            load = [asyncio.create_task(_book_until(http, owner, scene["slots"], stop, answers, booked, failures))
                    for scene in (moving, staying) for owner in scene["owners"]]
            await asyncio.sleep(2)  # the load is under way before the move starts
            before_move = len(booked)
            began = time.monotonic()
            moved = await asyncio.to_thread(run_cli, *vetbook_command("citus", "move-clinic", clinic_id,
                                                                      "--to", target),
                                            database_url=citus_database_url)
            move_seconds = time.monotonic() - began
            during_move = len(booked) - before_move
            await asyncio.sleep(2)  # and goes on after it
            stop.set()
            await asyncio.gather(*load)
        log = server.log()

    report = json.loads(moved.stdout)
    print(f"\nmove-clinic under load: {move_seconds:.1f} s, steps "
          f"{[(step['step'], step['seconds']) for step in report['steps']]}, bookings {len(booked)} "
          f"({during_move} while moving), answers {dict(answers)}")
    assert failures == [], failures[:5]
    assert during_move > 0  # bookings really went on while the clinic moved
    assert "Traceback" not in log
    assert (report["after"]["node"], report["after"]["isolated"]) == (target, True)

    async with connected(citus_database_url) as conn:
        found = {str(row["booking_id"]) for row in await conn.fetch("SELECT booking_id FROM bookings")}
        assert set(booked) <= found and len(found) == len(booked) == len(set(booked))
        # The moved clinic's rows are read from the target worker.
        node = await conn.fetchval(
            "SELECT nodename || ':' || nodeport FROM pg_dist_placement JOIN pg_dist_node USING (groupid) "
            "WHERE shardid = get_shard_id_for_distribution_column('bookings', $1::uuid)", clinic_id)
        assert node == target
        for scene in (moving, staying):
            places = await conn.fetch(
                "SELECT s.slot_id, s.remaining, (SELECT count(*) FROM bookings b WHERE b.clinic_id = $1 "
                "AND b.slot_id = s.slot_id AND b.status <> 'cancelled') AS kept FROM slots s WHERE s.clinic_id = $1",
                scene["clinic"]["clinic_id"])
            assert all(row["remaining"] == 500 - row["kept"] for row in places), [dict(row) for row in places]
    check = run_cli(*vetbook_command("check"), database_url=citus_database_url)
    assert check.stdout.startswith("ok:"), check.stdout
