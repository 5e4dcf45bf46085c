"""Where each table lives when VetBook runs on Citus (docs/scaling.md): the one layout that
``vetbook citus distribute`` applies and that tests/db/test_citus_rules.py checks the catalog against.

The tenant is the clinic. Everything of a booking's life (a slot, its holds, the booking, its payments, its
history) carries ``clinic_id`` in every key, is distributed by it and co-located with ``slots``, so that one
clinic's transaction touches one shard group on one node. The small tables every clinic's statements join
(who, which pet, which clinic, service and staff member) are reference tables: a copy on every node. The
platform's own service tables (logins, rate limits, the migration record, the analytics view) stay on the
coordinator, where every request arrives.
"""

from __future__ import annotations

DISTRIBUTION_COLUMN = "clinic_id"

# Reference tables, in an order in which each one's foreign keys point only at tables before it.
REFERENCE_TABLES: tuple[str, ...] = ("clinics", "users", "pets", "services", "staff")

# Distributed by clinic_id, co-located with the first (the co-location group's leader).
DISTRIBUTED_TABLES: tuple[str, ...] = (
    "slots", "reservations", "bookings", "payment_records", "booking_history", "desk_owner_lookups", "refunds",
    "gateway_payment_reads",
)

# Plain tables of the coordinator (Citus adds those that reference a reference table to its metadata as
# "Citus local tables"; they stay on the coordinator). Looked up by their own keys, never joined with a
# clinic's rows in a write.
COORDINATOR_TABLES: tuple[str, ...] = (
    "auth_sessions", "rate_limit_hits", "login_failures", "analytics_refreshes", "migration", "job_leases",
)

# Materialized views stay on the coordinator too; their query runs over the distributed tables.
COORDINATOR_VIEWS: tuple[str, ...] = ("booking_analytics_daily",)

# Trigger functions that may fire on a distributed or reference table: each touches only its own row (or
# reads a reference table, which every node has). A trigger runs on the worker that holds the row: one that
# wrote another distributed table would act outside the coordinator's distributed transaction, and one that
# sent a notification would reach no listener and break the two-phase commit of a transaction spanning
# workers. The rule check refuses any function not listed here.
SAFE_TRIGGER_FUNCTIONS: tuple[str, ...] = ("update_timestamp", "slots_check_local_day")


def table_kind(name: str) -> str | None:
    """'reference', 'distributed', 'coordinator' or 'view' for a table of the layout, else None."""
    if name in REFERENCE_TABLES:
        return "reference"
    if name in DISTRIBUTED_TABLES:
        return "distributed"
    if name in COORDINATOR_TABLES:
        return "coordinator"
    if name in COORDINATOR_VIEWS:
        return "view"
    return None
