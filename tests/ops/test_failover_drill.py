"""The failover drill (issue 13): owners hold, confirm and cancel against a primary with a synchronous
standby while the primary is killed (``pg_ctl stop -m immediate``: no checkpoint, like a power cut) and the
standby is promoted, through the app as a real process on a two-host ``DATABASE_URL``. Afterwards every
request that was answered 2xx is in the new primary, no request was answered 5xx, places agree
(``vetbook check``), the listener and the jobs work on the new primary, the old primary rejoins as a
standby with pg_rewind, and a second failover back works the same way. The outage clients saw is printed.

Marked ``drill`` (about a minute): ``pytest -m "not drill"`` leaves it out of a quick local run.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import run_cli, vetbook_command
from tests.db.factories import local_start, make_clinic, make_service, make_slot
from tests.servers import running_app
from web.core.embedded_postgres import LocalPostgres

pytestmark = pytest.mark.drill

OWNERS = 8
# Each owner walks the slots in order, one visit per slot (its pet cannot be in two visits at once).
SLOT_DAYS, SLOT_HOURS = range(2, 22), range(8, 16)
LOAD_BEFORE_KILL_SECONDS = 2.0
LOAD_AFTER_PROMOTE_SECONDS = 3.0
THINK_SECONDS = 0.04
RETRY_SECONDS = 30
RETRIED = "database away: request retried"


@dataclass
class Answer:
    kind: str
    status: int
    started: float
    ended: float
    # What a 2xx acknowledged: the hold's reservation_id, the booking_id of a confirm or a cancel.
    acknowledged: str | None = None


@dataclass
class Owner:
    headers: dict[str, str]
    pet_id: str
    next_slot: int = 0


@dataclass
class Drill:
    answers: list[Answer] = field(default_factory=list)

    async def call(self, http: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs) -> httpx.Response:
        started = time.monotonic()
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.HTTPError as error:  # no answer at all counts as a failure the client saw
            self.answers.append(Answer(kind, 0, started, time.monotonic(), repr(error)))
            raise
        body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
        acknowledged = body.get("reservation_id" if kind == "hold" else "booking_id") if response.is_success \
            else None
        self.answers.append(Answer(kind, response.status_code, started, time.monotonic(),
                                   str(acknowledged) if acknowledged else None))
        return response


async def _owner_load(http: httpx.AsyncClient, drill: Drill, person: Owner, slots: list[str],
                      stop: asyncio.Event) -> None:
    while not stop.is_set() and person.next_slot < len(slots):
        slot_id = slots[person.next_slot]
        keep = person.next_slot % 2 == 0
        person.next_slot += 1
        held = await drill.call(http, "hold", "POST", "/api/v1/reservations",
                                headers=person.headers | {"Idempotency-Key": uuid.uuid4().hex},
                                json={"slot_id": slot_id, "pet_id": person.pet_id})
        if held.status_code != 201:
            continue
        hold = held.json()
        booked = await drill.call(http, "confirm", "POST", f"/api/v1/reservations/{hold['reservation_id']}/confirm",
                                  headers=person.headers, json={"lock_token": hold["lock_token"]})
        if booked.status_code == 201 and not keep:
            booking = booked.json()
            await drill.call(http, "cancel", "POST", f"/api/v1/bookings/{booking['booking_id']}/cancel",
                             headers=person.headers,
                             json={"reason": "customer_request", "version": booking["version"]})
        await asyncio.sleep(THINK_SECONDS)


async def _register_owners(http: httpx.AsyncClient, count: int) -> list[Owner]:
    owners = []
    for number in range(count):
        email, password = f"drill-{number}-{uuid.uuid4().hex[:6]}@example.test", "drill-password-1"
        registered = await http.post("/api/v1/auth/register", json={
            "name": f"Drill owner {number}", "email": email, "phone": f"+62812000{number:04d}", "password": password})
        assert registered.status_code == 201, registered.text
        token = await http.post("/api/v1/auth/token", json={"email": email, "password": password})
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        pet = await http.post("/api/v1/pets", headers=headers, json={"name": f"Drill pet {number}", "species": "cat"})
        assert pet.status_code == 201, pet.text
        owners.append(Owner(headers, pet.json()["pet_id"]))
    return owners


async def _sse_events(http: httpx.AsyncClient, url: str, seen: list[tuple[float, str]]) -> None:
    async with http.stream("GET", url, timeout=None) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                seen.append((time.monotonic(), line.split(":", 1)[1].strip()))


async def _failover_under_load(http: httpx.AsyncClient, owners: list[Owner], slots: list[str],
                               primary: LocalPostgres, standby: LocalPostgres) -> dict:
    """Run the load, kill ``primary`` mid-way and promote ``standby``; the figures of what clients saw."""
    drill, stop = Drill(), asyncio.Event()
    load = [asyncio.create_task(_owner_load(http, drill, person, slots, stop)) for person in owners]
    await asyncio.sleep(LOAD_BEFORE_KILL_SECONDS)
    await asyncio.to_thread(primary.stop, "immediate")
    down_at = time.monotonic()  # pg_ctl returns once the server is gone
    await asyncio.to_thread(standby.promote)
    promoted_at = time.monotonic()
    await asyncio.sleep(LOAD_AFTER_PROMOTE_SECONDS)
    stop.set()
    await asyncio.gather(*load)

    answers = drill.answers
    failures = [answer for answer in answers if not 200 <= answer.status < 300]
    waiting = [answer for answer in answers if answer.started <= down_at <= answer.ended]
    started_after = [answer for answer in answers if answer.started >= down_at and answer.status < 300]
    return {
        "answers": answers,
        "failures": failures,
        "figures": {
            "requests": len(answers),
            "non_2xx": len(failures),
            "down_to_promoted_s": round(promoted_at - down_at, 3),
            # Requests that were running when the primary went down: each waited, retried, and was answered.
            "in_flight_when_down": len(waiting),
            "longest_wait_of_those_s": round(max((a.ended - a.started for a in waiting), default=0), 3),
            # The outage a client saw (none got an error): the primary going down to the first answer of a
            # request sent after that.
            "outage_seen_by_clients_s": round(min(a.ended for a in started_after) - down_at, 3)
            if started_after else None,
            "longest_request_s": round(max(answer.ended - answer.started for answer in answers), 3),
        },
    }


async def _lost_acknowledgements(url: str, answers: list[Answer]) -> dict[str, list[str]]:
    """Acknowledged writes the database does not have: holds, bookings, cancellations."""
    def acknowledged(kind: str) -> list[uuid.UUID]:
        return [uuid.UUID(a.acknowledged) for a in answers if a.kind == kind and 200 <= a.status < 300]

    connection = await asyncpg.connect(url)
    try:
        holds = {row[0] for row in await connection.fetch(
            "SELECT reservation_id FROM reservations WHERE reservation_id = ANY($1)", acknowledged("hold"))}
        bookings = {row[0] for row in await connection.fetch(
            "SELECT booking_id FROM bookings WHERE booking_id = ANY($1)", acknowledged("confirm"))}
        cancelled = {row[0] for row in await connection.fetch(
            "SELECT booking_id FROM bookings WHERE booking_id = ANY($1) AND status = 'cancelled'",
            acknowledged("cancel"))}
    finally:
        await connection.close()
    return {
        "holds": [str(i) for i in acknowledged("hold") if i not in holds],
        "bookings": [str(i) for i in acknowledged("confirm") if i not in bookings],
        "cancellations": [str(i) for i in acknowledged("cancel") if i not in cancelled],
    }


def _make_synchronous(primary: LocalPostgres) -> None:
    """Commits on ``primary`` wait for its standby's flush: an acknowledged booking survives its loss."""
    primary.set_setting("synchronous_standby_names", "*")
    deadline = time.monotonic() + 30
    while primary.psql("SELECT string_agg(sync_state, ',') FROM pg_stat_replication").strip() != "sync":
        assert time.monotonic() < deadline, "the standby never became synchronous"
        time.sleep(0.1)


async def _expiry_job_runs(http: httpx.AsyncClient, url: str, person: Owner, slot_id: str) -> None:
    """A hold made now and aged in SQL is expired by the app's job: the jobs work on the new primary."""
    held = await http.post("/api/v1/reservations", headers=person.headers,
                           json={"slot_id": slot_id, "pet_id": person.pet_id})
    assert held.status_code == 201, held.text
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "UPDATE reservations SET created_at = now() - interval '20 minutes', "
            "expires_at = now() - interval '10 minutes' WHERE reservation_id = $1",
            uuid.UUID(held.json()["reservation_id"]))
        async with asyncio.timeout(30):
            while True:
                status = await connection.fetchval("SELECT status FROM reservations WHERE reservation_id = $1",
                                                   uuid.UUID(held.json()["reservation_id"]))
                if status == "expired":
                    break
                await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def test_a_failover_under_load_loses_no_acknowledged_booking_and_fails_back(tmp_path: Path) -> None:
    first = LocalPostgres(tmp_path / "node-a")
    second = LocalPostgres(tmp_path / "node-b", standby_of=first)
    try:
        first_url = first.start()
        run_cli(*vetbook_command("migrate"), database_url=first_url)
        connection = await asyncpg.connect(first_url)
        try:
            clinic = await make_clinic(connection)
            service = await make_service(connection, clinic)
            slots = [str((await make_slot(connection, clinic, service, None, start=local_start(clinic, day, hour),
                                          capacity=20, remaining=20))["slot_id"])
                     for day in SLOT_DAYS for hour in SLOT_HOURS]
            day = (await connection.fetchval("SELECT date FROM slots WHERE slot_id = $1", uuid.UUID(slots[0])))
        finally:
            await connection.close()
        second_url = second.start()
        _make_synchronous(first)
        # Both nodes, in the form Patroni documents for libpq: the app asks for the one that takes writes.
        both = first_url.replace(f"127.0.0.1:{first.port}", f"127.0.0.1:{first.port},127.0.0.1:{second.port}")
        env = {"VETBOOK_DATABASE_RETRY_SECONDS": str(RETRY_SECONDS), "VETBOOK_HOLD_RATE_LIMIT": "100000/600",
               "VETBOOK_SIGNUP_IP_RATE_LIMIT": "1000/60"}
        with running_app(both, tmp_path / "app.log", env=env) as app:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=RETRY_SECONDS + 30) as http:
                owners = await _register_owners(http, OWNERS)
                events: list[tuple[float, str]] = []
                stream = asyncio.create_task(_sse_events(http, f"/live/clinics/{clinic['clinic_id']}/days/{day}",
                                                         events))
                try:
                    report = await _two_failovers(http, owners, slots, events, (first, first_url),
                                                  (second, second_url), app)
                    assert set(report) == {"failover_1", "failover_2"}
                finally:
                    stream.cancel()
    finally:
        second.destroy()
        first.destroy()


async def _two_failovers(http: httpx.AsyncClient, owners: list[Owner], slots: list[str],
                         events: list[tuple[float, str]], first_node: tuple[LocalPostgres, str],
                         second_node: tuple[LocalPostgres, str], app) -> dict:
    """A failover from the first node to the second, then back; each checked and its figures returned."""
    (first, first_url), (second, second_url) = first_node, second_node
    report = {}
    for phase, (old, new, new_url) in enumerate([(first, second, second_url), (second, first, first_url)], 1):
        retried_before = app.log().count(RETRIED)
        outcome = await _failover_under_load(http, owners, slots, old, new)
        figures = outcome["figures"]
        figures["retries_logged_by_the_app"] = app.log().count(RETRIED) - retried_before
        assert [(a.kind, a.status, a.acknowledged) for a in outcome["failures"]] == []
        assert figures["requests"] > 50, figures
        lost = await _lost_acknowledgements(new_url, outcome["answers"])
        assert lost == {"holds": [], "bookings": [], "cancellations": []}
        figures["lost_acknowledged"] = sum(len(ids) for ids in lost.values())
        run_cli(*vetbook_command("check"), database_url=new_url)
        ready = await http.get("/api/v1/ready")
        assert ready.status_code == 200 and ready.json()["primary"]["in_recovery"] is False, ready.text
        # The jobs and the live-update listener found the new primary: the expiry job ends a hold, and the
        # page following that day hears of it.
        heard_before = len(events)
        # slots[1] and slots[3]: on the followed day (the first), at times the owner's pet was cancelled from.
        await _expiry_job_runs(http, new_url, owners[0], slots[2 * phase - 1])
        async with asyncio.timeout(15):
            while True:
                if len(events) > heard_before:
                    break
                await asyncio.sleep(0.05)
        assert (await http.get("/api/v1/ready")).json()["listener"]["state"] == "listening"
        report[f"failover_{phase}"] = figures
        print(f"\nfailover drill, phase {phase}: {json.dumps(figures)}")
        # The old primary comes back as a standby of the new one, which then commits synchronously.
        await asyncio.to_thread(old.rejoin, new)
        await asyncio.to_thread(_make_synchronous, new)
        new.psql("CREATE TABLE IF NOT EXISTS drill_marker (phase int)", database="vetbook")
        new.psql(f"INSERT INTO drill_marker VALUES ({phase})", database="vetbook")
        await asyncio.to_thread(old.wait_for_replay, new.wal_position())
        assert old.in_recovery()
    return report
