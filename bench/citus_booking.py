"""Benchmark: the booking load of booking_throughput.py (hold + confirm over HTTP against ``vetbook serve
--workers 2``) on one PostgreSQL 15 server and on a Citus cluster (a coordinator and two workers of the same
PostgreSQL 15), one after the other in the same run, reported side by side with the ratio Citus / 1 node.
Reports figures; asserts nothing.

    .venv/bin/python bench/citus_booking.py                      # 20 s per run, 16 clients (~90 s in all)
    .venv/bin/python bench/citus_booking.py --seconds 5 --slots 2000

1. "1 node": a throw-away Debian PostgreSQL 15 (/usr/lib/postgresql/15/bin, durability off), migrated with
   ``vetbook migrate``. The same major version as the Citus nodes: the comparison is about distribution.
2. "coordinator + 2 workers": a throw-away LocalCitusCluster (web/ops/citus_cluster.py, durability off), a
   database made on it, migrated with ``vetbook migrate`` and distributed with ``vetbook citus distribute``
   (as tests/conftest.py ``citus_database_url`` does). The app talks to the coordinator only.

The load is booking_throughput.py's, imported from it (its seed, Scene and http_run): N clients (default 16),
each on its own keep-alive connection and in its own lane (a clinic's service with slots that never overlap and
owners of its own), so every answer should be 201; the same warm-up, timed window, pair latency and CPU from
/proc. Its slots' ids name their clinic and day (``vetbook_new_id``, as the app makes them), so no hold looks
its slot up across shards. The lanes' clinics (one per lane by default, ``--clinics``) fall on the shards, and
so on the workers, as their ids hash: the report says how many lanes each worker got.

Reported for each: bookings/s, p50/p99 of a booking (hold + confirm), CPU ms per booking (app, PostgreSQL per
node, load client), SQL statements per booking on the server the app talks to (pg_stat_statements of the one
node / of the coordinator). For Citus, the proof that each write went to one shard: on each worker, the
statements of the timed window from its pg_stat_statements that name the distributed tables' shards (e.g.
``slots_102008``), with the number of distinct shard groups each names (it should be one); for each kind of
the app's statements on a distributed table, the tasks the workers ran per call on the coordinator (one: a
single shard; the hold-expiry job's read across clinics runs one per shard); and EXPLAIN through the
coordinator of the engine's hold and confirm writes (web/booking/statements.py) with the values of a real hold
made over HTTP after the run: "Task Count: 1" and tests/citus/test_router_plans.py's router-plan check.

On a 2-core machine expect no speed-up: the coordinator, both workers, the app and the load client share the
same two cores, and Citus adds a hop (coordinator → worker) to every statement.

Skips (exit 0, doing nothing) where Citus cannot run: web.ops.citus_cluster.citus_available() says why.
Contacts only 127.0.0.1; stops the app and every server and removes the temporary folders, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import asyncpg
import booking_throughput
from booking_throughput import PRICE, Scene, http_run
from common import (
    ROOT,
    RawHttp,
    app_environment,
    children_map,
    code_version,
    machine_load,
    ms_per,
    postgres_process_kind,
    postmaster_pid,
    print_table,
    ratio,
    start_app,
    stop_app,
    stop_cleanly_on_sigterm,
    track_planning,
    tree_cpu_seconds,
    use_uvloop,
    write_json,
)

from web.core.embedded_postgres import LocalPostgres
from web.ops.citus_cluster import DEBIAN_PG15_BIN, LocalCitusCluster, citus_available

DATABASE = "vetbook_bench"
ONE_NODE = "1 node"
CITUS = "coordinator + 2 workers"


# ---------------------------------------------------------------- the two databases


@dataclass
class Target:
    """A migrated (and for Citus distributed) database the app is pointed at, and the servers behind it."""

    label: str
    url: str
    folder: Path
    nodes: dict[str, LocalPostgres]  # the node the app talks to first, then the workers
    worker_urls: dict[str, str] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def entry(self) -> LocalPostgres:
        return next(iter(self.nodes.values()))


def vetbook(*args: str, url: str, folder: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=ROOT, capture_output=True, text=True,
                            env=app_environment(url, folder), timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"vetbook {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@contextmanager
def one_node() -> Iterator[Target]:
    folder = Path(tempfile.mkdtemp(prefix="vetbook-bench-citus-1node-"))
    server = LocalPostgres(folder / "pg", bin_dir=DEBIAN_PG15_BIN, fast=True)
    try:
        started = time.perf_counter()
        url = server.start()
        up = time.perf_counter()
        vetbook("migrate", url=url, folder=folder)
        yield Target(ONE_NODE, url, folder, {"node": server},
                     setup_seconds={"start": round(up - started, 1), "migrate": round(time.perf_counter() - up, 1)})
    finally:
        try:
            server.destroy()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def citus_cluster() -> Iterator[Target]:
    folder = Path(tempfile.mkdtemp(prefix="vetbook-bench-citus-"))
    cluster = LocalCitusCluster(folder / "citus", workers=2, fast=True)
    try:
        started = time.perf_counter()
        cluster.start()
        cluster.create_database(DATABASE)
        url = cluster.url(DATABASE)
        up = time.perf_counter()
        vetbook("migrate", url=url, folder=folder)
        migrated = time.perf_counter()
        vetbook("citus", "distribute", url=url, folder=folder)
        nodes = {"coordinator": cluster.coordinator,
                 **{f"worker-{n}": node for n, node in enumerate(cluster.worker_nodes, start=1)}}
        worker_urls = dict(zip([name for name in nodes if name != "coordinator"], cluster.worker_urls(DATABASE),
                               strict=True))
        yield Target(CITUS, url, folder, nodes, worker_urls,
                     setup_seconds={"start": round(up - started, 1), "migrate": round(migrated - up, 1),
                                    "distribute": round(time.perf_counter() - migrated, 1)})
    finally:
        try:
            cluster.destroy()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the scene


async def seed(url: str, args: argparse.Namespace) -> Scene:
    """booking_throughput.seed: its clinics, lanes, slots (ids that name their clinic and day) and owners, with
    no baseline slots and no race owners (this benchmark runs neither). Adds each lane's clinic, read from its
    slots' ids (web/core/shard_keys.py: an id's first 48 bits are its clinic's)."""
    scene = await booking_throughput.seed(url, args)
    conn = await asyncpg.connect(url)
    try:
        clinics = [row["clinic_id"] for row in await conn.fetch("SELECT clinic_id FROM clinics")]
    finally:
        await conn.close()
    by_prefix = {clinic.bytes[:6]: clinic for clinic in clinics}
    lane_clinics = [by_prefix[UUID(lane.slots[0]).bytes[:6]] for lane in scene.lanes]
    scene.extra.update(lane_clinics=lane_clinics, clinics=sorted(set(lane_clinics)))
    return scene


# ---------------------------------------------------------------- CPU of several servers


class NodesMeter:
    """common.CpuMeter's figures (app, PostgreSQL, load client; what booking_throughput.http_run reads) over
    one or more PostgreSQL servers, with each server's share, from one walk of /proc per snapshot. Optional
    coroutines run when the window opens and closes (reset / read the workers' pg_stat_statements)."""

    def __init__(self, app_pid: int, nodes: dict[str, LocalPostgres], on_start=None, on_stop=None) -> None:
        self.app_pid = app_pid
        self.postmasters = {name: postmaster_pid(node) for name, node in nodes.items()}
        self.on_start, self.on_stop = on_start, on_stop
        self.start_task = self.stop_task = None
        self.started: dict = {}

    def snapshot(self) -> dict:
        children = children_map()
        own = os.times()
        return {"nodes": {name: tree_cpu_seconds(pid, children, postgres_process_kind)
                          for name, pid in self.postmasters.items()},
                "app": tree_cpu_seconds(self.app_pid, children)["total"],
                "app_processes": {pid: tree_cpu_seconds(pid, children)["total"]
                                  for pid in children.get(self.app_pid, [])},
                "client": own.user + own.system, "client_children": own.children_user + own.children_system}

    def start(self) -> None:
        self.started = self.snapshot()
        if self.on_start is not None:
            self.start_task = asyncio.get_running_loop().create_task(self.on_start())

    def stop(self) -> dict:
        end, begin = self.snapshot(), self.started
        if self.on_stop is not None:
            self.stop_task = asyncio.get_running_loop().create_task(self.on_stop())
        nodes = {name: {key: end["nodes"][name].get(key, 0) - begin["nodes"][name].get(key, 0)
                        for key in end["nodes"][name]} for name in end["nodes"]}
        return {"client": end["client"] - begin["client"],
                "client_children": end["client_children"] - begin["client_children"],
                "postgres": sum(parts["total"] for parts in nodes.values()),
                "postgres_nodes": {name: round(parts["total"], 2) for name, parts in nodes.items()},
                "postgres_parts": {name: {key: round(value, 3) for key, value in parts.items() if key != "total"}
                                   for name, parts in nodes.items()},
                "app": end["app"] - begin["app"],
                "app_per_process": sorted((round(seconds - begin["app_processes"].get(pid, 0.0), 2)
                                           for pid, seconds in end["app_processes"].items()), reverse=True)}


# ---------------------------------------------------------------- the workers' statements

STATEMENTS = """
SELECT query, calls, total_exec_time, total_plan_time, rows FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT ILIKE '%pg_stat_statements%'
"""
# Shard tables are named <table>_<shard id> (slots_102008); a partition's shards alike.
SHARD_NAME = re.compile(r'\b([a-z_][a-z0-9_]*_(\d{4,}))\b')


async def shard_catalog(conn) -> dict[str, dict]:
    """Every shard name of the database (from the coordinator's metadata) -> its table (a partition's: the
    partitioned table), whether the table is distributed, its shard group (co-located shards share the hash range) and the node(s) holding it."""
    rows = await conn.fetch(
        """
        SELECT s.shardid, shard_name(s.logicalrelid, s.shardid) AS shard,
               coalesce((SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = s.logicalrelid),
                        s.logicalrelid::regclass::text) AS table_name,
               p.partmethod = 'h' AS distributed, p.colocationid, s.shardminvalue, n.nodeport
        FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid)
        JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node n USING (groupid)
        """)
    catalog: dict[str, dict] = {}
    for row in rows:
        name = row["shard"].split(".")[-1].strip('"')
        entry = catalog.setdefault(name, {"table": row["table_name"], "distributed": row["distributed"],
                                          "group": (row["colocationid"], row["shardminvalue"]), "ports": set()})
        entry["ports"].add(row["nodeport"])
    return catalog


def by_statement(rows: list, bookings: int) -> list[dict]:
    """Every statement of the window on the app's server: calls per booking, mean execution and plan ms."""
    found = []
    for row in sorted(rows, key=lambda r: -r["calls"]):
        calls = row["calls"]
        found.append({"query": " ".join(row["query"].split())[:200], "calls": calls,
                      "per_booking": round(calls / bookings, 3) if bookings else None,
                      "mean_ms": round(row["total_exec_time"] / calls, 3) if calls else None,
                      "mean_plan_ms": round(row["total_plan_time"] / calls, 3) if calls else None})
    return found


def mask_shards(query: str, catalog: dict[str, dict]) -> str:
    """The query with each shard's id masked: ``public.slots_102008`` -> ``public.slots_<shard>``."""
    return SHARD_NAME.sub(lambda m: m[1][:-len(m[2])] + "<shard>" if m[1] in catalog else m[1], query)


def statement_key(query: str) -> str | None:
    """What a statement does to which table, the same for the app's statement on the coordinator and the task
    Citus sends a worker for it: ``UPDATE slots``, ``WITH UPDATE reservations``, ``SELECT … FROM reservations``."""
    text = query.replace("public.", "").replace("_<shard>", "")
    found = re.match(r"\s*(WITH\s+\w+\s+AS\s*\(\s*)?(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+(\w+)", text, re.I)
    if found:
        return f"{'WITH ' if found[1] else ''}{found[2].split()[0].upper()} {found[3]}"
    found = re.match(r"\s*SELECT\b.*?\bFROM\s+(\w+)", text, re.I | re.S)
    return f"SELECT … FROM {found[1]}" if found else None


def routing(entry_rows: list, worker_rows: dict[str, list], catalog: dict[str, dict]) -> list[dict]:
    """For each kind of statement on a distributed table: the app's calls on the coordinator, and the tasks
    the workers ran for them (pg_stat_statements, same window). One task per call: routed to one shard; a
    statement across clinics runs one task per shard."""
    distributed = {entry["table"] for entry in catalog.values() if entry["distributed"]}
    kinds: dict[str, dict] = {}
    for row in entry_rows:
        key = statement_key(" ".join(row["query"].split()))
        if key is not None and key.split()[-1] in distributed:
            kinds.setdefault(key, {"coordinator_calls": 0, "worker_calls": {}, "groups": set()})
            kinds[key]["coordinator_calls"] += row["calls"]
    for worker, rows in worker_rows.items():
        for row in rows:
            query = " ".join(row["query"].split())
            key = statement_key(mask_shards(query, catalog))
            if key in kinds:
                kinds[key]["worker_calls"][worker] = kinds[key]["worker_calls"].get(worker, 0) + row["calls"]
                kinds[key]["groups"] |= {catalog[m[0]]["group"] for m in SHARD_NAME.findall(query)
                                         if m[0] in catalog and catalog[m[0]]["distributed"]}
    return [{"statement": key, "coordinator_calls": kind["coordinator_calls"], "worker_calls": kind["worker_calls"],
             "tasks_per_call": ratio(sum(kind["worker_calls"].values()), kind["coordinator_calls"]),
             "shard_groups": len(kind["groups"])}
            for key, kind in sorted(kinds.items(), key=lambda kv: -kv[1]["coordinator_calls"])]


def shard_usage(worker_rows: dict[str, list], catalog: dict[str, dict], bookings: int) -> dict:
    """Per worker: the window's statements that name shards of distributed tables, the shard groups each
    names (one, for a router-planned statement), and the statements by shape (shard ids masked)."""
    report: dict = {}
    overall_max = 0
    for worker, rows in worker_rows.items():
        calls = sum(row["calls"] for row in rows)
        shard_calls = 0
        groups_seen: set = set()
        spanning: list[dict] = []
        tables: dict[str, int] = {}
        shapes: dict[str, dict] = {}
        per_statement_groups: dict[int, int] = {}
        for row in rows:
            query = " ".join(row["query"].split())
            named = {match[0] for match in SHARD_NAME.findall(query) if match[0] in catalog}
            distributed = {name for name in named if catalog[name]["distributed"]}
            groups = {catalog[name]["group"] for name in distributed}
            shape = mask_shards(query, catalog)
            entry = shapes.setdefault(shape, {"calls": 0, "entries": 0, "groups": set()})
            entry["calls"] += row["calls"]
            entry["entries"] += 1
            entry["groups"] |= groups
            if not distributed:
                continue
            shard_calls += row["calls"]
            if not (statement_key(shape) or "SELECT").startswith("SELECT"):
                groups_seen |= groups  # written (the hold-expiry job's read looks at every shard)
            per_statement_groups[len(groups)] = per_statement_groups.get(len(groups), 0) + row["calls"]
            overall_max = max(overall_max, len(groups))
            for name in distributed:
                tables[catalog[name]["table"]] = tables.get(catalog[name]["table"], 0) + row["calls"]
            if len(groups) > 1:
                spanning.append({"query": query[:200], "calls": row["calls"], "shard_groups": len(groups)})
        report[worker] = {
            "statements": calls, "per_booking": round(calls / bookings, 2) if bookings else None,
            "shard_statements": shard_calls,
            "shard_statements_per_booking": round(shard_calls / bookings, 2) if bookings else None,
            "shard_groups_written": len(groups_seen),
            # {shard groups a statement names: its calls}: only {1: …} when every write is routed to one shard.
            "calls_by_shard_groups_per_statement": {str(k): v for k, v in sorted(per_statement_groups.items())},
            "statements_spanning_shard_groups": spanning,
            "calls_by_table": dict(sorted(tables.items(), key=lambda kv: -kv[1])),
            "top_by_calls": [{"query": shape[:160], "calls": s["calls"], "distinct_shards": s["entries"],
                              "per_booking": round(s["calls"] / bookings, 3) if bookings else None}
                             for shape, s in sorted(shapes.items(), key=lambda kv: -kv[1]["calls"])[:12]],
        }
    report["max_shard_groups_per_statement"] = overall_max
    return report


# ---------------------------------------------------------------- router plans of a real hold


def import_router_plan_check():
    """tests/citus/test_router_plans.py's check. The project's folder goes first on sys.path for the import
    (a package in site-packages is also called ``tests``). Importing it runs tests/conftest.py, which changes
    os.environ (test settings): they are put back, so that nothing of it reaches later processes."""
    saved = dict(os.environ)
    sys.path.insert(0, str(ROOT))
    try:
        from tests.citus.test_router_plans import plan_of, router_plan_problem
    finally:
        sys.path.remove(str(ROOT))
        os.environ.clear()
        os.environ.update(saved)
    return plan_of, router_plan_problem


async def hold_over_http(app, scene: Scene) -> dict:
    """One more hold through the API, on the first lane's next place (left pending)."""
    lane = scene.lanes[0]
    booking = lane.next_booking(scene.capacity)
    if booking is None:
        raise RuntimeError("the first lane has no place left for the EXPLAIN hold (raise --slots)")
    slot_id, owner = booking
    http = RawHttp(app.port)
    try:
        status, body = await http.request("POST", "/api/v1/reservations", owner["auth"],
                                          f'{{"slot_id":"{slot_id}","pet_id":"{owner["pet_id"]}"}}'.encode())
    finally:
        http.close()
    if status != 201:
        raise RuntimeError(f"the EXPLAIN hold was refused: {status} {body[:300]!r}")
    return {**json.loads(body), "clinic_id": scene.extra["lane_clinics"][0], "owner": owner}


async def router_plans(conn, held: dict, catalog: dict[str, dict]) -> list[dict]:
    """EXPLAIN (through the coordinator) of the hold's and the confirm's writes, with the real hold's values,
    as tests/citus/test_router_plans.py write_path() passes them."""
    from web.booking import statements as q
    from web.core.shard_keys import new_id, new_id_today

    plan_of, router_plan_problem = import_router_plan_check()
    clinic = held["clinic_id"]
    hold = await conn.fetchrow("SELECT * FROM reservations WHERE clinic_id = $1 AND reservation_id = $2",
                               clinic, held["reservation_id"])
    slot = await conn.fetchrow("SELECT * FROM slots WHERE clinic_id = $1 AND slot_id = $2 AND date = $3",
                               clinic, hold["slot_id"], hold["slot_date"])
    owner, pet, day, slot_id = hold["user_id"], hold["pet_id"], hold["slot_date"], hold["slot_id"]
    statements = {
        "TAKE_PLACE_FOR_HOLD": (q.TAKE_PLACE_FOR_HOLD, (clinic, slot_id, day, True, pet, owner, 5, None)),
        "INSERT_RESERVATION": (q.INSERT_RESERVATION, (clinic, new_id(clinic, day), owner, pet, slot_id, day,
                                                      hold["service_id"], 600, "t" * 43, None)),
        "CONFIRM_HOLD": (q.CONFIRM_HOLD, (clinic, hold["reservation_id"], owner, hold["lock_token"])),
        "INSERT_CONFIRMED_BOOKING": (q.INSERT_CONFIRMED_BOOKING,
                                     (clinic, new_id_today(clinic), hold["reservation_id"], owner, pet,
                                      hold["service_id"], slot_id, day, None, Decimal(PRICE), "IDR", None, "app", 30,
                                      slot["start_time"], "ABCDEFGH")),
    }
    found = []
    for name, (statement, args) in statements.items():
        try:
            plan = await plan_of(conn, statement, *args)
        except asyncpg.PostgresError as error:
            found.append({"statement": name, "task_count": None, "problem": f"Citus refuses it: {error}"})
            continue
        counts = re.findall(r"Task Count: (\d+)", plan)
        node = re.search(r"Node: host=\S+ port=(\d+)", plan)
        shards = sorted({m[0] for m in SHARD_NAME.findall(plan) if m[0] in catalog})
        distributed = [name for name in shards if catalog[name]["distributed"]]
        found.append({"statement": name, "task_count": ", ".join(counts) or None,
                      "node_port": int(node[1]) if node else None,
                      "shard_groups": len({catalog[name]["group"] for name in distributed}),
                      "distributed_tables": sorted({catalog[name]["table"] for name in distributed}),
                      "reference_tables": sorted({catalog[name]["table"] for name in shards
                                                  if not catalog[name]["distributed"]}),
                      "shards_in_plan": shards, "problem": router_plan_problem(plan), "plan": plan})
    return found


# ---------------------------------------------------------------- one run


async def run_load(target: Target, args: argparse.Namespace) -> dict:
    """Seed, start the app on ``target``, run booking_throughput.http_run, read what the workers did."""
    result: dict = {"label": target.label, "setup_seconds": target.setup_seconds,
                    "machine_load_before": machine_load()}
    for node in target.nodes.values():
        node.psql("SELECT 1")  # every node answers
    track_planning(target.entry)
    seeded_at = time.perf_counter()
    scene = await seed(target.url, args)
    result["setup_seconds"]["seed"] = round(time.perf_counter() - seeded_at, 1)
    monitor = await asyncpg.connect(target.url)
    reader = await asyncpg.connect(target.url)
    workers: dict[str, asyncpg.Connection] = {}
    app = None
    try:
        result["server"] = await monitor.fetchval("SELECT version()")
        if target.worker_urls:
            result["citus_version"] = await monitor.fetchval("SELECT citus_version()")
            result["shard_count"] = await monitor.fetchval(
                "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'slots'::regclass")
            for name, url in target.worker_urls.items():
                workers[name] = await asyncpg.connect(url)
                if not await workers[name].fetchval("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"):
                    async with workers[name].transaction():
                        await workers[name].execute("SET LOCAL citus.enable_ddl_propagation = off")
                        await workers[name].execute("CREATE EXTENSION pg_stat_statements")
            result["placement"] = await placement(monitor, target, scene)
        app = start_app(target.url, target.folder, args.workers, env={"VETBOOK_HOLD_RATE_LIMIT": "100000000/600"})

        async def reset_workers() -> None:
            for conn in workers.values():
                await conn.execute("SELECT pg_stat_statements_reset()")

        async def read_statements_at_end() -> dict:
            # Every statement (http_run keeps the top 10) of the app's server, and the workers' statements.
            return {"entry": await reader.fetch(STATEMENTS),
                    **{name: await conn.fetch(STATEMENTS) for name, conn in workers.items()}}

        meter = NodesMeter(app.process.pid, target.nodes, reset_workers, read_statements_at_end)
        print(f"[{time.strftime('%H:%M:%S')}] {target.label}: {args.clients} clients, {args.warmup:g} s warm-up + "
              f"{args.seconds:g} s...", flush=True)
        result["http"] = await http_run(app, scene, monitor, meter, args)
        await meter.start_task
        rows = await meter.stop_task
        bookings = result["http"]["bookings"]
        entry_rows = rows.pop("entry")
        result["statements"] = by_statement(entry_rows, bookings)
        if workers:
            catalog = await shard_catalog(monitor)
            result["workers"] = shard_usage(rows, catalog, bookings)
            result["routing"] = routing(entry_rows, rows, catalog)
            held = await hold_over_http(app, scene)
            result["router_plans"] = await router_plans(monitor, held, catalog)
    finally:
        if app is not None:
            stop_app(app)
        for conn in [*workers.values(), reader, monitor]:
            await conn.close()
    result["machine_load_after"] = machine_load()
    return result


async def placement(conn, target: Target, scene: Scene) -> dict:
    """Which worker holds each lane's clinic (the load is spread as the clinics' hashes fall)."""
    rows = await conn.fetch(
        """
        SELECT c.clinic_id, n.nodeport FROM unnest($1::uuid[]) AS c(clinic_id)
        JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('slots', c.clinic_id)
        JOIN pg_dist_node n USING (groupid)
        """, scene.extra["clinics"])
    port_name = {node.port: name for name, node in target.nodes.items()}
    node_of = {row["clinic_id"]: port_name.get(row["nodeport"], str(row["nodeport"])) for row in rows}
    lanes: dict[str, int] = {}
    for clinic in scene.extra["lane_clinics"]:
        lanes[node_of[clinic]] = lanes.get(node_of[clinic], 0) + 1
    clinics: dict[str, int] = {}
    for name in node_of.values():
        clinics[name] = clinics.get(name, 0) + 1
    return {"clinics_per_worker": dict(sorted(clinics.items())), "lanes_per_worker": dict(sorted(lanes.items())),
            "node_ports": {name: node.port for name, node in target.nodes.items()}}


# ---------------------------------------------------------------- the report


def print_report(report: dict) -> None:
    runs = [report["runs"][ONE_NODE], report["runs"][CITUS]]
    one, citus = runs
    settings = report["settings"]
    print(f"\nbookings on 1 node vs Citus — {settings['clients']} clients, vetbook serve --workers "
          f"{settings['workers']}, {settings['seconds']:g} s per run after {settings['warmup']:g} s warm-up, "
          f"{settings['clinics']} clinics, load client on {report['event_loop']}; code {report['code']['commit']} "
          f"(+{report['code']['uncommitted_app_files']} uncommitted app files); {one['server'].split(' on ')[0]}, "
          f"{citus.get('citus_version', '?').split(' on ')[0]}, {citus.get('shard_count')} shards")
    for run in runs:
        load = run["machine_load_before"]
        print(f"  load average before {run['label']}: {load['loadavg_1m']} / {load['loadavg_5m']} / "
              f"{load['loadavg_15m']} ({load['cpus']} CPUs); setup s: "
              + ", ".join(f"{k} {v}" for k, v in run["setup_seconds"].items()))

    def row(label: str, pick, with_ratio: bool = True) -> list:
        values = []
        for run in runs:
            try:
                values.append(pick(run))
            except (KeyError, TypeError, ValueError):
                values.append(None)
        numeric = all(isinstance(v, (int, float)) for v in values)
        return [label, *values, ratio(values[1], values[0]) if with_ratio and numeric else None]

    http = lambda r: r["http"]  # noqa: E731
    cpu = lambda r: r["http"]["cpu_ms_per_booking"]  # noqa: E731
    bookings = lambda r: r["http"]["bookings"]  # noqa: E731

    def node_cpu(name: str):
        return lambda r: ms_per(r["http"]["cpu_seconds"]["postgres_nodes"][name], bookings(r))

    rows = [
        row("bookings/s", lambda r: http(r)["bookings_per_s"]),
        row("bookings in the window", lambda r: http(r)["bookings"]),
        row("booking (hold + confirm) p50 ms", lambda r: http(r)["pair_latency"]["p50_ms"]),
        row("booking p99 ms", lambda r: http(r)["pair_latency"]["p99_ms"]),
        row("errors", lambda r: ", ".join(f"{k}: {v}" for k, v in http(r)["errors"].items()) or "none", False),
        row("CPU ms/booking: app", lambda r: cpu(r)["app"]),
        row("CPU ms/booking: PostgreSQL (all nodes)", lambda r: cpu(r)["postgres"]),
        row("  the node / coordinator", lambda r: node_cpu("node" if r is one else "coordinator")(r)),
        row("  worker-1", node_cpu("worker-1")),
        row("  worker-2", node_cpu("worker-2")),
        row("CPU ms/booking: load client", lambda r: cpu(r)["load_client"]),
        row("CPU ms/booking: total", lambda r: cpu(r)["total"]),
        row("CPU busy (of 2 cores)", lambda r: http(r)["cpu_utilisation_of_2_cores"]),
        row("SQL statements/booking (app's server)", lambda r: http(r)["sql"]["per_unit"]),
        row("  SQL exec ms/booking", lambda r: http(r)["sql"]["exec_ms_per_unit"]),
        row("  SQL plan ms/booking", lambda r: http(r)["sql"]["plan_ms_per_unit"]),
        row("worker statements/booking (w1 / w2)", lambda r: " / ".join(
            str(r["workers"][w]["per_booking"]) for w in ("worker-1", "worker-2")), False),
        row("  of which name a shard (w1 / w2)", lambda r: " / ".join(
            str(r["workers"][w]["shard_statements_per_booking"]) for w in ("worker-1", "worker-2")), False),
        row("  worker tasks per write statement", lambda r: " / ".join(
            str(k["tasks_per_call"]) for k in r["routing"] if not k["statement"].startswith("SELECT")), False),
        row("  max shard groups in one statement", lambda r: r["workers"]["max_shard_groups_per_statement"], False),
        row("clinics / lanes per worker", lambda r: " / ".join(
            f"{r['placement']['clinics_per_worker'].get(w, 0)}:{r['placement']['lanes_per_worker'].get(w, 0)}"
            for w in ("worker-1", "worker-2")), False),
    ]
    print_table("hold + confirm over HTTP", ["", ONE_NODE, CITUS, "Citus / 1 node"], rows)

    keys: dict[str, dict[str, dict]] = {}
    for run in runs:
        for statement in run["statements"]:
            keys.setdefault(statement["query"][:95], {})[run["label"]] = statement
    listed = sorted(keys.items(), key=lambda kv: -max(s["calls"] for s in kv[1].values()))
    pick = lambda found, label, key: found.get(label, {}).get(key)  # noqa: E731
    print_table("statements the app's server ran, per booking (pg_stat_statements of the node / the coordinator)",
                ["statement", "1 node", "Citus", "mean ms: 1 node", "Citus", "plan ms: 1 node", "Citus"],
                [[query, pick(found, ONE_NODE, "per_booking"), pick(found, CITUS, "per_booking"),
                  pick(found, ONE_NODE, "mean_ms"), pick(found, CITUS, "mean_ms"),
                  pick(found, ONE_NODE, "mean_plan_ms"), pick(found, CITUS, "mean_plan_ms")]
                 for query, found in listed[:report["settings"]["top"]]])
    for worker in ("worker-1", "worker-2"):
        usage = citus["workers"][worker]
        print_table(f"{worker}: statements of the window by shape (shard ids masked); "
                    f"{usage['shard_groups_written']} shard groups written, calls by shard groups named per "
                    f"statement: {usage['calls_by_shard_groups_per_statement']}",
                    ["statement", "calls", "entries (shards)", "per booking"],
                    [[s["query"][:110], s["calls"], s["distinct_shards"], s["per_booking"]]
                     for s in usage["top_by_calls"]])
        for spanning in usage["statements_spanning_shard_groups"]:
            print(f"  SPANS {spanning['shard_groups']} shard groups ({spanning['calls']} calls): {spanning['query']}")
    print_table("routing: the app's statements on distributed tables (coordinator) and the tasks the workers ran "
                "for them, same window (1 task per call: one shard)",
                ["statement", "coordinator calls", "worker-1 tasks", "worker-2 tasks", "tasks per call",
                 "shard groups"],
                [[r["statement"], r["coordinator_calls"], r["worker_calls"].get("worker-1", 0),
                  r["worker_calls"].get("worker-2", 0), r["tasks_per_call"], r["shard_groups"]]
                 for r in citus["routing"]])
    port_name = {port: name for name, port in citus["placement"]["node_ports"].items()}
    print_table("EXPLAIN through the coordinator, with a real hold's values (tables: distributed; + reference)",
                ["statement", "Task Count", "node", "shard groups", "tables", "router plan"],
                [[p["statement"], p["task_count"], port_name.get(p.get("node_port"), p.get("node_port")),
                  p.get("shard_groups"), ", ".join(p.get("distributed_tables", []))
                  + (f"; + {', '.join(p['reference_tables'])}" if p.get("reference_tables") else ""),
                  p["problem"] or "yes (one shard)"] for p in citus["router_plans"]])
    for name, value in report["citus_over_one_node"].items():
        print(f"  Citus / 1 node, {name}: {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="timed window of each run")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="vetbook serve --workers")
    parser.add_argument("--clinics", type=int, default=16,
                        help="clinics the lanes belong to (lane k: clinic k mod clinics), spread over the shards")
    parser.add_argument("--slots", type=int, default=10_000, help="slots the clients book (all lanes)")
    parser.add_argument("--capacity", type=int, default=4, help="places per slot")
    parser.add_argument("--owners-per-client", type=int, default=8)
    parser.add_argument("--top", type=int, default=20, help="statements listed side by side")
    parser.add_argument("--json", help="where to write the JSON report (default bench/results/citus_booking.json)")
    args = parser.parse_args()
    if reason := citus_available():
        print(f"citus_booking: skipped: {reason}")
        return 0
    # What booking_throughput's seed and http_run also read: its raw client, connections balanced over the
    # app's workers; no baseline slots, no race.
    args.client, args.balance = "raw", True
    args.baseline_slots, args.race_holds, args.race_capacity = 0, 0, 1
    stop_cleanly_on_sigterm()

    report: dict = {"benchmark": "citus_booking", "machine_load_before": machine_load(), "code": code_version(),
                    "event_loop": use_uvloop(),
                    "settings": {k: v for k, v in vars(args).items() if k != "json"}, "runs": {}}
    started = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {ONE_NODE}: PostgreSQL 15, migrate...", flush=True)
    with one_node() as target:
        report["runs"][ONE_NODE] = asyncio.run(run_load(target, args))
    print(f"[{time.strftime('%H:%M:%S')}] {CITUS}: start the cluster, migrate, distribute...", flush=True)
    with citus_cluster() as target:
        report["runs"][CITUS] = asyncio.run(run_load(target, args))
    one, citus = report["runs"][ONE_NODE]["http"], report["runs"][CITUS]["http"]
    report["citus_over_one_node"] = {
        "bookings_per_s": ratio(citus["bookings_per_s"], one["bookings_per_s"]),
        "p50_ms": ratio(citus["pair_latency"]["p50_ms"], one["pair_latency"]["p50_ms"]),
        "p99_ms": ratio(citus["pair_latency"]["p99_ms"], one["pair_latency"]["p99_ms"]),
        "cpu_ms_per_booking_total": ratio(citus["cpu_ms_per_booking"]["total"], one["cpu_ms_per_booking"]["total"]),
        "cpu_ms_per_booking_postgres": ratio(citus["cpu_ms_per_booking"]["postgres"],
                                             one["cpu_ms_per_booking"]["postgres"]),
    }
    report["machine_load_after"] = machine_load()
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    print_report(report)
    path = write_json(report, args.json, "citus_booking")
    print(f"\nJSON: {path}  (wall time {report['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
