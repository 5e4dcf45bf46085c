"""Citus operations on the coordinator: distribute a migrated database, say where a clinic lives, move it.

Each takes an asyncpg connection to the coordinator (``vetbook citus …`` opens one on DATABASE_URL). The layout
(which table is a reference table, which is distributed by clinic_id, which stays on the coordinator) is
web/ops/citus_layout.py; ``layout`` arguments (any object with that module's names) exist so that tests can
apply the same steps to a small schema.

- ``distribute``: idempotent. Reference tables first (in the layout's order: each one's foreign keys point at
  tables before it), then the distributed tables, co-located with the first of them (the group's leader), so
  that one clinic's rows of every table are in one shard group on one node. Citus needs a referenced table to
  be distributed before the table that references it, and our schema has a cycle (a booking names its
  payment, a payment its booking), so the foreign keys between distributed tables are dropped first and
  added again once every table is distributed.
- ``clinic_placement``: the clinic's shard group (its id, whether the clinic has it alone, node, size).
- ``move_clinic``: a big clinic gets a shard group of its own (``isolate_tenant_to_new_shard``) and is
  moved to another worker (``citus_move_shard_placement``). Both copy by logical replication
  (``force_logical``): the clinic's writes go on during the copy and wait only for the final switch.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import asyncpg

from web.ops import citus_layout

# The table a clinic id must exist in (a reference table of the layout).
CLINICS_TABLE = "clinics"
# A move copies the shard group by logical replication: writes continue while it is copied, and pause only
# for the final switch-over.
MOVE_MODE = "force_logical"
# Isolating a clinic splits its shard group. Citus 13's non-blocking split stalls for good when the shard's
# rows are UPDATEd while it runs (its decoder then sends UPDATEs the new shards cannot apply: 'publisher did
# not send replica identity column expected by the logical replication target relation', citusdata/citus
# issue #6790, open), and bookings update rows all the time; so the split blocks writes to that one shard
# group while it copies it (the other clinics' shards are untouched, and the app's requests wait rather
# than fail). The move that follows is online.
ISOLATE_MODE = "block_writes"


class CitusError(RuntimeError):
    """An operation cannot run as asked (not a Citus coordinator, bad input); the message says why."""


class DistributeRefused(CitusError):
    """The schema breaks a rule of the layout (web/ops/citus_rules.py); ``violations`` lists each."""

    def __init__(self, violations: list) -> None:
        self.violations = violations
        lines = "\n  ".join(violation.message for violation in violations)
        super().__init__(f"the schema does not fit the Citus layout ({len(violations)} problem(s)):\n  {lines}")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _ensure_coordinator(conn: asyncpg.Connection) -> None:
    if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'"):
        raise CitusError(f"database {await conn.fetchval('SELECT current_database()')} has no Citus extension: "
                         f"not a Citus coordinator (set DATABASE_URL to the coordinator's URL; "
                         f"vetbook db start --citus starts a local cluster and prints it)")
    if not await conn.fetchval("SELECT citus_is_coordinator()"):
        raise CitusError("this is a Citus worker: connect to the coordinator")


async def _citus_tables(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Every table Citus knows (partitions excluded): name -> its type, distribution column and co-location
    group. Types: 'distributed', 'reference', 'local' (a Citus local table: it stays on the coordinator)."""
    rows = await conn.fetch(
        "SELECT p.logicalrelid::regclass::text AS name, p.colocationid, "
        "       CASE WHEN p.partmethod = 'h' THEN 'distributed' "
        "            WHEN p.repmodel = 't' THEN 'reference' ELSE 'local' END AS kind, "
        "       CASE WHEN p.partmethod = 'h' THEN column_to_column_name(p.logicalrelid, p.partkey) END AS column "
        "FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid WHERE NOT c.relispartition"
    )
    return {row["name"]: dict(row) for row in rows}


async def _existing(conn: asyncpg.Connection, tables: tuple[str, ...]) -> list[str]:
    found = await conn.fetch(
        "SELECT name FROM unnest($1::text[]) WITH ORDINALITY AS t(name, position) "
        "WHERE to_regclass(quote_ident(name)) IS NOT NULL ORDER BY position", list(tables))
    return [row["name"] for row in found]


async def _enable_unsafe_triggers(conn: asyncpg.Connection) -> None:
    """``citus.enable_unsafe_triggers`` on for every later session of this database, on every node (the
    steps of ``distribute`` set it for their own transactions, ``_unsafe_triggers_here``): Citus refuses to distribute a table with triggers, and to add a trigger or a partition with one
    to a distributed table, without it. Our triggers touch only their own row (the layout's
    SAFE_TRIGGER_FUNCTIONS, checked by the rules). Citus does not pass ALTER DATABASE … SET on to the workers,
    so each node is told; a worker takes it only with DDL propagation off for that statement."""
    database = _ident(await conn.fetchval("SELECT current_database()"))
    await conn.execute(f"ALTER DATABASE {database} SET citus.enable_unsafe_triggers = on")
    # Two statements in one string run as one implicit transaction, which SET LOCAL lasts for.
    command = (f"SET LOCAL citus.enable_ddl_propagation = off; "
               f"ALTER DATABASE {database} SET citus.enable_unsafe_triggers = on")
    failed = await conn.fetch("SELECT nodename, nodeport, result FROM run_command_on_workers($1) WHERE NOT success",
                              command)
    if failed:
        raise CitusError("could not turn citus.enable_unsafe_triggers on: "
                         + "; ".join(f"{row['nodename']}:{row['nodeport']}: {row['result']}" for row in failed))


async def _unsafe_triggers_here(conn: asyncpg.Connection) -> None:
    """``citus.enable_unsafe_triggers`` on for the current transaction (ALTER DATABASE reaches only sessions
    that start later; SET LOCAL leaves nothing on the connection)."""
    await conn.execute("SET LOCAL citus.enable_unsafe_triggers = on")


async def _foreign_keys_of(conn: asyncpg.Connection, pending: list[str]) -> list[dict[str, str]]:
    """The foreign keys declared by or pointing at a table of ``pending`` (on the parent: a partition's
    copies come and go with it), with their definitions."""
    rows = await conn.fetch(
        "SELECT c.conname AS name, c.conrelid::regclass::text AS table_name, "
        "       c.confrelid::regclass::text AS referenced, pg_get_constraintdef(c.oid) AS definition "
        "FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.conparentid = 0 "
        "  AND (c.conrelid = ANY($1::regclass[]) OR c.confrelid = ANY($1::regclass[])) "
        "ORDER BY c.conrelid::regclass::text, c.conname",
        [_ident(name) for name in pending])
    return [dict(row) for row in rows]


async def distribute(conn: asyncpg.Connection, shard_count: int, layout: Any = citus_layout) -> dict:
    """Make a migrated database distributed as ``layout`` says; a second run changes nothing.

    Refuses (DistributeRefused) while the schema breaks a rule of the layout, before changing anything.
    Returns what it did and what already was so."""
    from web.ops.citus_rules import rule_violations

    await _ensure_coordinator(conn)
    if violations := await rule_violations(conn, layout=layout):
        raise DistributeRefused(violations)
    column = layout.DISTRIBUTION_COLUMN
    await _enable_unsafe_triggers(conn)
    known = await _citus_tables(conn)
    report: dict[str, Any] = {"reference": {"created": [], "already": []},
                              "distributed": {"created": [], "already": []},
                              "foreign_keys_recreated": [], "missing": [],
                              "coordinator": list(layout.COORDINATOR_TABLES), "shard_count": shard_count}

    reference = await _existing(conn, layout.REFERENCE_TABLES)
    distributed = await _existing(conn, layout.DISTRIBUTED_TABLES)
    report["missing"] = [name for name in (*layout.REFERENCE_TABLES, *layout.DISTRIBUTED_TABLES)
                         if name not in reference and name not in distributed]
    leader = layout.DISTRIBUTED_TABLES[0]
    if distributed and leader not in distributed:
        raise CitusError(f"{leader}, the co-location leader of the layout's distributed tables, does not exist")

    new_reference = []
    for name in reference:
        kind = known.get(name, {}).get("kind")
        if kind == "reference":
            report["reference"]["already"].append(name)
        elif kind == "distributed":
            raise CitusError(f"{name} is a distributed table; the layout makes it a reference table")
        else:
            new_reference.append(name)
    pending = []
    for name in distributed:
        info = known.get(name, {})
        if info.get("kind") == "distributed":
            if info["column"] != column:
                raise CitusError(f"{name} is distributed by {info['column']}, not by {column}")
            if name != leader and info["colocationid"] != known.get(leader, {}).get("colocationid"):
                raise CitusError(f"{name} is distributed but not co-located with {leader}")
            report["distributed"]["already"].append(name)
        elif info.get("kind") == "reference":
            raise CitusError(f"{name} is a reference table; the layout distributes it by {column}")
        else:
            pending.append(name)
    if not new_reference and not pending:
        return report

    # One transaction: either every table is placed with its foreign keys back, or nothing changes. The
    # foreign keys of the tables still to distribute go first: while they stand, making a reference table
    # turns every plain table that references it into a "Citus local table" (Citus refuses that conversion
    # for our partitioned tables: 'child table is missing constraint …'), and a referenced table must be
    # distributed before the table that references it (bookings and payment_records reference each other).
    async with conn.transaction():
        await _unsafe_triggers_here(conn)
        foreign_keys = await _foreign_keys_of(conn, pending)
        for key in foreign_keys:
            await conn.execute(f"ALTER TABLE {key['table_name']} DROP CONSTRAINT {_ident(key['name'])}")
        for name in new_reference:
            await conn.execute("SELECT create_reference_table($1::regclass)", _ident(name))
            report["reference"]["created"].append(name)
        for name in pending:
            if name == leader:
                await conn.execute("SELECT create_distributed_table($1::regclass, $2, colocate_with => 'none', "
                                   "shard_count => $3)", _ident(name), column, shard_count)
            else:
                await conn.execute("SELECT create_distributed_table($1::regclass, $2, colocate_with => $3)",
                                   _ident(name), column, _ident(leader))
            report["distributed"]["created"].append(name)
        for key in foreign_keys:
            await conn.execute(
                f"ALTER TABLE {key['table_name']} ADD CONSTRAINT {_ident(key['name'])} {key['definition']}")
            report["foreign_keys_recreated"].append(f"{key['table_name']}.{key['name']}")
        for name in (*new_reference, *pending):
            await _truncate_local_copy(conn, name)
    return report


async def _truncate_local_copy(conn: asyncpg.Connection, name: str) -> None:
    """Citus copies a table's rows into its shards and leaves the original rows in the coordinator's table,
    unseen by every query (they only take disk): removed, as Citus's notice advises."""
    await conn.execute("SELECT truncate_local_data_after_distributing_table($1::regclass)", _ident(name))


# ---------------------------------------------------------------- where a clinic lives


def _node(host: str, port: int) -> str:
    return f"{host}:{port}"


async def _active_workers(conn: asyncpg.Connection, leader: str) -> list[dict[str, Any]]:
    """Active primary workers that may hold shards, each with how many of the leader's shards it holds."""
    rows = await conn.fetch(
        "SELECT n.nodename, n.nodeport, count(s.shardid) AS shards "
        "FROM pg_dist_node n "
        "LEFT JOIN pg_dist_placement p ON p.groupid = n.groupid "
        "LEFT JOIN pg_dist_shard s ON s.shardid = p.shardid AND s.logicalrelid = $1::regclass "
        "WHERE n.isactive AND n.noderole = 'primary' AND n.shouldhaveshards AND n.groupid <> 0 "
        "GROUP BY n.nodename, n.nodeport ORDER BY n.nodename, n.nodeport", _ident(leader))
    return [{"node": _node(row["nodename"], row["nodeport"]), "host": row["nodename"], "port": row["nodeport"],
             "shards": row["shards"]} for row in rows]


async def clinic_placement(conn: asyncpg.Connection, clinic_id: UUID | str,
                           layout: Any = citus_layout) -> dict[str, Any]:
    """Where the clinic's rows are: its shard group (the shard id of the leader table), whether the clinic
    has that group alone (its hash range is one value), the node holding it, its size in bytes (every
    co-located shard of the group, partitions included), and the active workers."""
    await _ensure_coordinator(conn)
    clinic = UUID(str(clinic_id))
    leader = layout.DISTRIBUTED_TABLES[0]
    if not await conn.fetchval(
            f"SELECT 1 FROM {_ident(CLINICS_TABLE)} WHERE {_ident(layout.DISTRIBUTION_COLUMN)} = $1", clinic):
        raise CitusError(f"no clinic {clinic}")
    if (await _citus_tables(conn)).get(leader, {}).get("kind") != "distributed":
        raise CitusError(f"{leader} is not distributed yet: run vetbook citus distribute first")
    shard = await conn.fetchrow(
        "SELECT s.shardid, s.shardminvalue, s.shardmaxvalue, n.nodename, n.nodeport "
        "FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid) "
        "WHERE s.shardid = get_shard_id_for_distribution_column($1::regclass, $2::text)", _ident(leader),
        str(clinic))
    # The shard group: the shards of every co-located table (partitions too) with the same hash range.
    size = await conn.fetchval(
        "SELECT coalesce(sum(z.size), 0) FROM citus_shard_sizes() z "
        "JOIN pg_dist_shard s ON s.shardid = z.shard_id "
        "JOIN pg_dist_partition t ON t.logicalrelid = s.logicalrelid "
        "WHERE t.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass) "
        "  AND s.shardminvalue = $2 AND s.shardmaxvalue = $3", _ident(leader), shard["shardminvalue"],
        shard["shardmaxvalue"])
    return {
        "clinic_id": str(clinic),
        "shard_id": shard["shardid"],
        "isolated": shard["shardminvalue"] == shard["shardmaxvalue"],
        "hash_range": [int(shard["shardminvalue"]), int(shard["shardmaxvalue"])],
        "node": _node(shard["nodename"], shard["nodeport"]),
        "size_bytes": int(size),
        "workers": await _active_workers(conn, leader),
    }


async def move_clinic(conn: asyncpg.Connection, clinic_id: UUID | str, to_node: str | None = None,
                      isolate: bool = True, dry_run: bool = False,
                      layout: Any = citus_layout) -> dict[str, Any]:
    """Give a clinic a shard group of its own (unless ``isolate`` is False or it has one) and move that group
    to ``to_node`` ("host:port"; default: the worker with the fewest shards other than the current one),
    unless it is there already. ``dry_run`` returns the plan and changes nothing. Otherwise returns the plan,
    each step's time, and the placement before and after."""
    before = await clinic_placement(conn, clinic_id, layout=layout)
    workers = {worker["node"]: worker for worker in before["workers"]}
    if to_node is not None:
        target = _normalise_node(to_node)
        if target not in workers:
            raise CitusError(f"{to_node} is not an active worker (workers: {', '.join(workers) or 'none'})")
    else:
        others = [worker for worker in before["workers"] if worker["node"] != before["node"]]
        if not others:
            raise CitusError(f"no other active worker to move clinic {before['clinic_id']} to")
        target = min(others, key=lambda worker: (worker["shards"], worker["node"]))["node"]
    plan = []
    if isolate and not before["isolated"]:
        plan.append({"step": "isolate", "shard_id": before["shard_id"], "node": before["node"]})
    if target != before["node"]:
        plan.append({"step": "move", "from": before["node"], "to": target})
    report: dict[str, Any] = {"clinic_id": before["clinic_id"], "dry_run": dry_run, "plan": plan,
                              "before": before}
    if dry_run:
        return report

    leader = layout.DISTRIBUTED_TABLES[0]
    steps = []
    started = time.monotonic()
    for step in plan:
        step_started = time.monotonic()
        if step["step"] == "isolate":
            column_type = await conn.fetchval(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass "
                "AND attname = $2", _ident(leader), layout.DISTRIBUTION_COLUMN)
            new_shard = await conn.fetchval(
                f"SELECT isolate_tenant_to_new_shard($1::regclass, $2::text::{column_type}, 'CASCADE', "
                f"shard_transfer_mode => '{ISOLATE_MODE}')", _ident(leader), before["clinic_id"])
            steps.append({**step, "new_shard_id": new_shard})
        else:
            placement = await clinic_placement(conn, clinic_id, layout=layout)
            source_host, source_port = placement["node"].rsplit(":", 1)
            target_host, target_port = target.rsplit(":", 1)
            await conn.execute(
                f"SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode => '{MOVE_MODE}')",
                placement["shard_id"], source_host, int(source_port), target_host, int(target_port))
            steps.append({**step, "shard_id": placement["shard_id"]})
        steps[-1]["seconds"] = round(time.monotonic() - step_started, 3)
    report |= {"steps": steps, "seconds": round(time.monotonic() - started, 3),
               "after": await clinic_placement(conn, clinic_id, layout=layout)}
    return report


def _normalise_node(text: str) -> str:
    host, separator, port = text.strip().rpartition(":")
    if not separator or not host or not port.isdigit():
        raise CitusError(f"not a node: {text!r} (give host:port, e.g. 127.0.0.1:5433)")
    return _node(host, int(port))
