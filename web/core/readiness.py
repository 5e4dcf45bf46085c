"""Readiness: can this process serve requests, and from which nodes?

Liveness (``/api/v1/health``) says the process runs and reaches the database. Readiness says more, for a
load balancer or an orchestrator deciding where to send traffic, and for the operator during a failover:

- the primary: reachable, and not in recovery (a standby that has not been promoted cannot take a booking);
  not ready (503) otherwise;
- each replica (``DATABASE_REPLICA_URL``): reachable, its lag in bytes (the primary's WAL position against
  the replica's replay position: exact, unlike ``pg_stat_replication.replay_lag``) and in seconds (when it
  is behind: the age of the last transaction it replayed; 0 when it is not). A replica that is down or
  behind does not make the process unready: lag-tolerant reads then go to the primary;
- the live-update listener: idle (no page has subscribed yet), listening, or reconnecting.

Every probe has a deadline, so readiness answers within a few seconds even when a node hangs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from web.core.connections import VetbookEngine

PROBE_SECONDS = 2.0

# On a standby, pg_current_wal_lsn() would fail: the CASE never calls it there.
_PRIMARY = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS wal_position
"""
# A standby's replay position and the age of the last transaction it replayed.
_REPLICA = """
SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS replay_position,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replayed_age_seconds
"""
_LAG_BYTES = "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint AS lag_bytes"


async def probe(engine: VetbookEngine, query: str, *args: Any) -> dict | None:
    """One row from a pooled connection of ``engine``, or None when the node does not answer in time."""
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            async with engine.pool.acquire() as connection:
                row = await connection.fetchrow(query, *args)
    except Exception:  # unreachable, refused, shutting down, timed out: all mean "not available"
        return None
    return dict(row)


async def node_states(engine: VetbookEngine) -> tuple[dict, list[dict]]:
    """The primary's state (reachable, in recovery, WAL position) and each replica's (reachable, in
    recovery, lag in bytes and seconds), every probe within PROBE_SECONDS."""
    primary = await probe(engine, _PRIMARY)
    writable = primary is not None and not primary["in_recovery"]
    replicas = []
    for name, node in sorted(engine.extra_nodes.items()):
        state = await probe(node, _REPLICA) if node.pool is not None else None
        entry: dict[str, Any] = {"name": name, "reachable": state is not None}
        if state is not None:
            lag = None
            if writable and state["replay_position"] is not None:
                lag = await probe(engine, _LAG_BYTES, primary["wal_position"], state["replay_position"])
            lag_bytes = max(0, lag["lag_bytes"]) if lag else None
            # Behind in bytes: for as long as since the last transaction it replayed (what a reader may miss
            # is at most that old; None when it has replayed none since it started); caught up: 0. Only when
            # behind, since on a primary without writes that age would only say "quiet".
            age = state["replayed_age_seconds"]
            lag_seconds = (round(age, 3) if age is not None else None) if lag_bytes else 0.0
            entry |= {"in_recovery": state["in_recovery"], "lag_bytes": lag_bytes, "lag_seconds": lag_seconds}
        replicas.append(entry)
    return ({"reachable": primary is not None,
             "in_recovery": primary["in_recovery"] if primary else None,
             "wal_position": primary["wal_position"] if primary else None}, replicas)


async def readiness(engine: VetbookEngine, listener_state: str, subscribers: int) -> dict:
    """The readiness report (see the module's docstring); ``ready`` is False when the primary cannot write."""
    primary, replicas = await node_states(engine)
    return {
        "ready": primary["reachable"] and not primary["in_recovery"],
        "primary": primary,
        "replicas": replicas,
        "listener": {"state": listener_state, "subscribers": subscribers},
    }
