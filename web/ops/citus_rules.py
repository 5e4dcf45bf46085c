"""Does the schema follow Citus's rules for the layout of web/ops/citus_layout.py? Read from the catalog.

``rule_violations(conn)`` reads PostgreSQL's own catalogs (pg_class, pg_attribute, pg_index,
pg_constraint, pg_trigger, pg_proc, pg_amop) of the ``public`` schema and returns every place where the
schema breaks a rule below. It needs no Citus: it runs on plain PostgreSQL 15+, so the tests prove a
migration distributable before any cluster exists, and catch the next migration that would not be.

Why the rules: Citus splits a distributed table into shards by the hash of its distribution column
(``clinic_id``: one clinic's rows live together on one node), and every shard is an ordinary PostgreSQL
table that checks its constraints *alone*. A constraint that does not contain the distribution column
would need to see rows of other shards, which no shard can: Citus refuses to distribute such a table.
Reference tables are copied whole to every node; coordinator tables stay on the coordinator only.

Rules (the ``rule`` id of a Violation in brackets):

1. [unclassified-table] Every ordinary or partitioned table that is not itself a partition is named in
   exactly one of REFERENCE_TABLES, DISTRIBUTED_TABLES, COORDINATOR_TABLES, and every materialized view in
   COORDINATOR_VIEWS: ``vetbook citus distribute`` places only what the layout names, and a table it
   does not know would stay a plain table of the coordinator that distributed tables cannot reference.
   A partition belongs to its partitioned table (Citus distributes a partition tree as a whole).
   (A name of the layout without a table is not a violation: ``vetbook citus distribute`` reports it as
   missing.)
2. [distribution-column] A distributed table has the distribution column, NOT NULL: it is what Citus
   hashes to choose the shard of a row; a row without it has no shard.
3. [unique-without-distribution-column] Every PRIMARY KEY, UNIQUE constraint and unique index (partial and
   expression ones too) of a distributed table, or of one of its partitions, has the distribution column
   as a plain key column. Each shard checks uniqueness among its own rows only; with the distribution
   column in the key, rows that could collide are always in the same shard, so the check is complete.
   In an expression, or as an INCLUDE column, the column does not decide which rows collide.
4. [exclusion-without-distribution-column] Every EXCLUDE constraint of a distributed table or of its
   partitions compares the distribution column with equality (``clinic_id WITH =``): the same reason as
   3, two rows can conflict only within one clinic, hence within one shard.
5. [foreign-key-distribution-column] A foreign key between two distributed tables contains the
   distribution column on both sides, at the same position (``(clinic_id, slot_id) REFERENCES slots
   (clinic_id, slot_id)``): the referencing row and the row it points at are then in co-located shards
   of the same node, where PostgreSQL's own foreign-key check can see both.
6. [foreign-key-direction] No foreign key from a reference or coordinator table to a distributed table
   (a copy on every node, or the coordinator, cannot check a row that lives on one worker), none from a
   distributed table to a coordinator table (a worker cannot see it), and a reference table references
   only reference tables. A distributed or coordinator table may reference a reference table.
7. [foreign-key-action] A foreign key of a distributed table whose columns include the distribution
   column has no ON DELETE / ON UPDATE SET NULL or SET DEFAULT, nor ON UPDATE CASCADE (also with a PostgreSQL
   15 column list): these would change a row's distribution column, i.e. move it to another shard, which
   Citus cannot do in a cascade; Citus refuses such keys.
8. [unsafe-trigger] Every trigger (not PostgreSQL's internal ones) on a distributed or reference table, or
   a partition of one, calls a function named in SAFE_TRIGGER_FUNCTIONS. On Citus a trigger runs on the
   worker holding the row; one that writes another distributed table would write outside the
   coordinator's distributed transaction, and on a shard that may live elsewhere.

Objects PostgreSQL clones from a partitioned table onto its partitions (indexes attached to the parent's
index, foreign keys and triggers with a parent) are reported once, on the parent; what a partition
declares itself (the per-partition exclusion constraints, an index created on one partition) is reported
under the partitioned table's name, the message naming the partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from web.ops import citus_layout

# The rules, in the order the docstring explains them (violations are sorted by it).
UNCLASSIFIED_TABLE = "unclassified-table"
DISTRIBUTION_COLUMN = "distribution-column"
UNIQUE_WITHOUT_DISTRIBUTION_COLUMN = "unique-without-distribution-column"
EXCLUSION_WITHOUT_DISTRIBUTION_COLUMN = "exclusion-without-distribution-column"
FOREIGN_KEY_DISTRIBUTION_COLUMN = "foreign-key-distribution-column"
FOREIGN_KEY_DIRECTION = "foreign-key-direction"
FOREIGN_KEY_ACTION = "foreign-key-action"
UNSAFE_TRIGGER = "unsafe-trigger"

RULES: tuple[str, ...] = (
    UNCLASSIFIED_TABLE, DISTRIBUTION_COLUMN, UNIQUE_WITHOUT_DISTRIBUTION_COLUMN,
    EXCLUSION_WITHOUT_DISTRIBUTION_COLUMN, FOREIGN_KEY_DISTRIBUTION_COLUMN, FOREIGN_KEY_DIRECTION,
    FOREIGN_KEY_ACTION, UNSAFE_TRIGGER,
)

REFERENCE = "reference"
DISTRIBUTED = "distributed"
COORDINATOR = "coordinator"
VIEW = "view"


@dataclass(frozen=True)
class Violation:
    """One break of one rule: ``table`` is the table of the layout (a partition's partitioned table),
    ``name`` the offending constraint, index, trigger or table, ``rule`` one of RULES."""

    table: str
    name: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


# ------------------------------------------------------------------------------------------------ SQL

# The single-letter codes of the catalog ("char": relkind, contype, confdeltype…) are read as ::text:
# asyncpg returns "char" as bytes.

# Every table, partition and materialized view of the schema. A partition belongs to the root of its
# partition tree (pg_partition_root is NULL for a table outside any tree). dist_attnum / dist_not_null
# describe the distribution column ($1) of this very relation: a partition created on its own and
# attached later can number its columns differently from its parent, so attribute numbers are never
# carried from one relation to another.
RELATIONS_SQL = """
SELECT c.oid,
       c.relname,
       c.relkind::text AS relkind,
       c.relispartition,
       root.relname AS root_name,
       dist.attnum AS dist_attnum,
       dist.attnotnull AS dist_not_null
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class root
       ON root.oid = COALESCE(pg_partition_root(c.oid), c.oid)
      AND root.relnamespace = c.relnamespace
LEFT JOIN pg_attribute dist
       ON dist.attrelid = c.oid AND dist.attname = $1 AND dist.attnum > 0 AND NOT dist.attisdropped
WHERE n.nspname = 'public'
  AND c.relkind IN ('r', 'p', 'm')
"""

# Unique indexes of the given relations: those behind PRIMARY KEY and UNIQUE constraints (contype p / u)
# and those made by CREATE UNIQUE INDEX (no constraint), partial and expression ones included. An index
# attached to its partitioned parent's index (relispartition) is a clone: the parent's is reported.
# indkey lists the key columns first, then the INCLUDE columns; 0 stands for an expression.
UNIQUE_INDEXES_SQL = """
SELECT i.indrelid AS relid,
       ix.relname AS index_name,
       con.contype::text AS contype,
       i.indpred IS NOT NULL AS is_partial,
       0 = ANY (i.indkey::int2[]) AS has_expression,
       EXISTS (
           SELECT 1
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
           WHERE k.position <= i.indnkeyatts AND k.attnum = dist.attnum
       ) AS dist_is_key,
       EXISTS (
           SELECT 1
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
           WHERE k.position > i.indnkeyatts AND k.attnum = dist.attnum
       ) AS dist_is_included
FROM pg_index i
JOIN pg_class ix ON ix.oid = i.indexrelid
LEFT JOIN pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
LEFT JOIN pg_attribute dist
       ON dist.attrelid = i.indrelid AND dist.attname = $1 AND dist.attnum > 0 AND NOT dist.attisdropped
WHERE i.indisunique
  AND NOT ix.relispartition
  AND i.indrelid = ANY ($2::oid[])
"""

# EXCLUDE constraints of the given relations. conkey and conexclop run in step: the n-th column (0 for an
# expression) is compared with the n-th operator. "Equality" is what Citus accepts: an operator that is
# the equality (strategy 3) of a B-tree operator family, e.g. uuid = uuid, which btree_gist reuses in GiST;
# a name alone ('=') could be any user-defined operator. Constraints cloned from a partitioned parent
# (conparentid, PostgreSQL 17+) are reported on the parent.
EXCLUSIONS_SQL = """
SELECT con.conrelid AS relid,
       con.conname,
       dist.attnum = ANY (con.conkey) AS dist_is_compared,
       EXISTS (
           SELECT 1
           FROM unnest(con.conkey, con.conexclop) AS e(attnum, operator)
           JOIN pg_amop amop ON amop.amopopr = e.operator AND amop.amopstrategy = 3
           JOIN pg_am am ON am.oid = amop.amopmethod AND am.amname = 'btree'
           WHERE e.attnum = dist.attnum
       ) AS dist_is_equal
FROM pg_constraint con
LEFT JOIN pg_attribute dist
       ON dist.attrelid = con.conrelid AND dist.attname = $1 AND dist.attnum > 0 AND NOT dist.attisdropped
WHERE con.contype = 'x'
  AND con.conparentid = 0
  AND con.conrelid = ANY ($2::oid[])
"""

# Foreign keys declared on the given relations. PostgreSQL clones a foreign key onto every partition of
# the referencing table and adds one per partition of the referenced table; those clones have a
# conparentid and are skipped, so each declared key is seen once. Positions are 1-based places of the
# distribution column in the key (NULL: absent); "paired" is Citus's test: at one position, both sides.
FOREIGN_KEYS_SQL = """
SELECT con.conname,
       con.conrelid AS relid,
       con.confrelid AS referenced_relid,
       con.confdeltype::text AS confdeltype,
       con.confupdtype::text AS confupdtype,
       array_position(con.conkey, src.attnum) AS referencing_position,
       array_position(con.confkey, dst.attnum) AS referenced_position,
       EXISTS (
           SELECT 1
           FROM unnest(con.conkey, con.confkey) AS p(referencing, referenced)
           WHERE p.referencing = src.attnum AND p.referenced = dst.attnum
       ) AS dist_is_paired
FROM pg_constraint con
LEFT JOIN pg_attribute src
       ON src.attrelid = con.conrelid AND src.attname = $1 AND src.attnum > 0 AND NOT src.attisdropped
LEFT JOIN pg_attribute dst
       ON dst.attrelid = con.confrelid AND dst.attname = $1 AND dst.attnum > 0 AND NOT dst.attisdropped
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND con.conrelid = ANY ($2::oid[])
"""

# User triggers of the given relations (tgisinternal: those PostgreSQL makes itself, e.g. to enforce
# foreign keys). A trigger on a partitioned table is cloned onto each partition with tgparentid set: the
# parent's trigger is reported, once.
TRIGGERS_SQL = """
SELECT t.tgrelid AS relid,
       t.tgname,
       p.proname,
       pn.nspname AS function_schema
FROM pg_trigger t
JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE NOT t.tgisinternal
  AND t.tgparentid = 0
  AND t.tgrelid = ANY ($1::oid[])
"""

# pg_constraint's codes of referential actions, as DDL says them.
ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


# --------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class _Relation:
    oid: int
    name: str
    relkind: str
    is_partition: bool
    table: str | None  # the layout's table this relation is (or is a partition of); None: another schema
    placement: str | None  # REFERENCE, DISTRIBUTED, COORDINATOR, VIEW, or None (not in the layout)
    dist_attnum: int | None
    dist_not_null: bool

    @property
    def where(self) -> str:
        """How a message names the relation: the table, or the partition and its table."""
        if self.is_partition:
            return f"partition {self.name} of {self.table}"
        return f"table {self.name}"


class _Layout:
    """The layout object's lists, read once, and where each name is placed."""

    def __init__(self, layout: Any) -> None:
        self.column: str = layout.DISTRIBUTION_COLUMN
        self.lists: dict[str, tuple[str, ...]] = {
            "REFERENCE_TABLES": tuple(layout.REFERENCE_TABLES),
            "DISTRIBUTED_TABLES": tuple(layout.DISTRIBUTED_TABLES),
            "COORDINATOR_TABLES": tuple(layout.COORDINATOR_TABLES),
            "COORDINATOR_VIEWS": tuple(layout.COORDINATOR_VIEWS),
        }
        self.safe_functions = frozenset(layout.SAFE_TRIGGER_FUNCTIONS)
        placements = {
            "REFERENCE_TABLES": REFERENCE, "DISTRIBUTED_TABLES": DISTRIBUTED,
            "COORDINATOR_TABLES": COORDINATOR, "COORDINATOR_VIEWS": VIEW,
        }
        self.placement: dict[str, str] = {}
        self.lists_of: dict[str, list[str]] = {}
        for list_name, names in self.lists.items():
            for name in names:
                self.placement.setdefault(name, placements[list_name])
                self.lists_of.setdefault(name, []).append(list_name)


# ----------------------------------------------------------------------------------------------- API


async def rule_violations(conn: asyncpg.Connection, layout: Any = citus_layout) -> list[Violation]:
    """Every break of the rules above in the ``public`` schema of ``conn``'s database, sorted by table,
    rule and name; [] when the schema can be distributed as ``layout`` says.

    ``layout`` is any object with DISTRIBUTION_COLUMN, REFERENCE_TABLES, DISTRIBUTED_TABLES,
    COORDINATOR_TABLES, COORDINATOR_VIEWS and SAFE_TRIGGER_FUNCTIONS (web.ops.citus_layout by default)."""
    plan = _Layout(layout)
    relations = await _relations(conn, plan)
    distributed = [r.oid for r in relations.values() if r.placement == DISTRIBUTED and r.relkind != "m"]
    placed = [r.oid for r in relations.values()
              if r.placement in (DISTRIBUTED, REFERENCE) and r.relkind != "m"]
    tables = [r.oid for r in relations.values() if r.relkind != "m" and r.table is not None]

    violations = [
        *_classification(relations, plan),
        *_distribution_columns(relations, plan),
        *_unique_keys(await conn.fetch(UNIQUE_INDEXES_SQL, plan.column, distributed), relations, plan),
        *_exclusions(await conn.fetch(EXCLUSIONS_SQL, plan.column, distributed), relations, plan),
        *_foreign_keys(await conn.fetch(FOREIGN_KEYS_SQL, plan.column, tables), relations, plan),
        *_triggers(await conn.fetch(TRIGGERS_SQL, placed), relations, plan),
    ]
    return sorted(violations, key=lambda v: (v.table, RULES.index(v.rule), v.name))


async def _relations(conn: asyncpg.Connection, plan: _Layout) -> dict[int, _Relation]:
    relations = {}
    for row in await conn.fetch(RELATIONS_SQL, plan.column):
        table = row["root_name"]
        relations[row["oid"]] = _Relation(
            oid=row["oid"], name=row["relname"], relkind=row["relkind"], is_partition=row["relispartition"],
            table=table, placement=plan.placement.get(table) if table is not None else None,
            dist_attnum=row["dist_attnum"], dist_not_null=bool(row["dist_not_null"]),
        )
    return relations


# --------------------------------------------------------------------------------------------- rules


def _classification(relations: dict[int, _Relation], plan: _Layout) -> Iterable[Violation]:
    """Rule 1: every table and materialized view is in the layout, once, in a list of its kind."""
    lists = "REFERENCE_TABLES, DISTRIBUTED_TABLES or COORDINATOR_TABLES"
    for rel in relations.values():
        if rel.is_partition:
            continue
        in_lists = plan.lists_of.get(rel.name, [])
        if rel.relkind == "m":
            if in_lists != ["COORDINATOR_VIEWS"]:
                yield Violation(rel.name, rel.name, UNCLASSIFIED_TABLE, (
                    f"Materialized view {rel.name} is {_listed(in_lists)} of the Citus layout: list it in "
                    "COORDINATOR_VIEWS only (materialized views stay on the coordinator; Citus does not "
                    "distribute them)."
                ))
        elif len(in_lists) != 1 or in_lists[0] == "COORDINATOR_VIEWS":
            yield Violation(rel.name, rel.name, UNCLASSIFIED_TABLE, (
                f"Table {rel.name} is {_listed(in_lists)} of the Citus layout: name it in exactly one of "
                f"{lists} (web/ops/citus_layout.py), so that `vetbook citus distribute` knows where it lives."
            ))


def _listed(in_lists: list[str]) -> str:
    if not in_lists:
        return "in no list"
    return "in " + " and ".join(in_lists)


def _distribution_columns(relations: dict[int, _Relation], plan: _Layout) -> Iterable[Violation]:
    """Rule 2: a distributed table has the distribution column, NOT NULL."""
    column = plan.column
    for rel in relations.values():
        if rel.placement != DISTRIBUTED or rel.is_partition or rel.relkind == "m":
            continue
        if rel.dist_attnum is None:
            yield Violation(rel.name, rel.name, DISTRIBUTION_COLUMN, (
                f"Distributed table {rel.name} has no {column} column: Citus places each row on a shard "
                f"by its {column}. Add {column} NOT NULL (filled from the row's parent), and put it in "
                "the table's keys and foreign keys."
            ))
        elif not rel.dist_not_null:
            yield Violation(rel.name, rel.name, DISTRIBUTION_COLUMN, (
                f"Distributed table {rel.name}: {column} may be NULL, and a row without it has no shard. "
                f"Make it NOT NULL."
            ))


def _unique_keys(rows: list[asyncpg.Record], relations: dict[int, _Relation],
                 plan: _Layout) -> Iterable[Violation]:
    """Rule 3: every primary key, unique constraint and unique index has the distribution column as a
    plain key column."""
    column = plan.column
    for row in rows:
        if row["dist_is_key"]:
            continue
        rel = relations[row["relid"]]
        name = row["index_name"]
        if row["contype"] == "p":
            what = f"Primary key {name}"
        elif row["contype"] == "u":
            what = f"Unique constraint {name}"
        else:
            details = [detail for detail, present in (("partial", row["is_partial"]),
                                                      ("expression", row["has_expression"])) if present]
            what = f"Unique index {name}" + (f" ({', '.join(details)})" if details else "")
        if rel.dist_attnum is None:
            why = f"{rel.name} has no {column} yet"
        elif row["dist_is_included"]:
            why = f"{column} is only an INCLUDE column, which takes no part in uniqueness"
        else:
            why = f"{column} is not one of its key columns"
        yield Violation(rel.table, name, UNIQUE_WITHOUT_DISTRIBUTION_COLUMN, (
            f"{what} on {rel.where} cannot be enforced by Citus: {why}, and each shard checks uniqueness "
            f"among its own rows only. Add {column} to its key columns (as a column, not in an "
            "expression), or drop it."
        ))


def _exclusions(rows: list[asyncpg.Record], relations: dict[int, _Relation],
                plan: _Layout) -> Iterable[Violation]:
    """Rule 4: every exclusion constraint compares the distribution column with equality."""
    column = plan.column
    for row in rows:
        if row["dist_is_equal"]:
            continue
        rel = relations[row["relid"]]
        name = row["conname"]
        if rel.dist_attnum is None:
            why = f"{rel.name} has no {column} yet"
        elif row["dist_is_compared"]:
            why = f"it compares {column} with an operator other than ="
        else:
            why = f"it does not compare {column}"
        yield Violation(rel.table, name, EXCLUSION_WITHOUT_DISTRIBUTION_COLUMN, (
            f"Exclusion constraint {name} on {rel.where} cannot be enforced by Citus: {why}, and each "
            f"shard sees only its own rows. Add `{column} WITH =` to it, so that rows can only conflict "
            "within one clinic."
        ))


def _foreign_keys(rows: list[asyncpg.Record], relations: dict[int, _Relation],
                  plan: _Layout) -> Iterable[Violation]:
    """Rules 5, 6 and 7, for each declared foreign key."""
    column = plan.column
    for row in rows:
        rel = relations[row["relid"]]
        target = relations.get(row["referenced_relid"])
        name = row["conname"]
        source_kind = rel.placement
        target_kind = target.placement if target is not None else None
        if source_kind is None or target_kind is None:
            continue  # an unclassified table: rule 1 says so (or a table outside the public schema)
        points_at = f"{rel.where} to {target.where}"

        # Rule 6: which kinds of table may reference which.
        direction = None
        if target_kind == DISTRIBUTED and source_kind != DISTRIBUTED:
            direction = (f"a {source_kind} table cannot reference a distributed one (its rows are not on "
                         "the node of the row it points at)")
        elif source_kind == DISTRIBUTED and target_kind == COORDINATOR:
            direction = ("a distributed table cannot reference a coordinator table (a worker cannot see "
                         "the coordinator's rows)")
        elif source_kind == REFERENCE and target_kind != REFERENCE:
            direction = f"a reference table may reference only reference tables, not a {target_kind} table"
        if direction is not None:
            yield Violation(rel.table, name, FOREIGN_KEY_DIRECTION, (
                f"Foreign key {name} from {points_at}: {direction}. Drop it and check the rule in the "
                "application, or move a table to another list of the layout."
            ))

        # Rule 5: between distributed tables, on the distribution column at the same position.
        if source_kind == DISTRIBUTED and target_kind == DISTRIBUTED and not row["dist_is_paired"]:
            referencing, referenced = row["referencing_position"], row["referenced_position"]
            if referencing is None and referenced is None:
                why = f"{column} is in neither side of it"
            elif referencing is None:
                why = f"{column} is not among its referencing columns"
            elif referenced is None:
                why = f"{column} is not among its referenced columns"
            else:
                why = (f"{column} is column {referencing} of the referencing side but column {referenced} "
                       "of the referenced side")
            yield Violation(rel.table, name, FOREIGN_KEY_DISTRIBUTION_COLUMN, (
                f"Foreign key {name} from {points_at} links two distributed tables, but {why}. Citus checks "
                f"it only when both rows are on one shard: make it ({column}, …) REFERENCES "
                f"{target.table} ({column}, …), {column} at the same position on both sides."
            ))

        # Rule 7: no referential action that would change the distribution column.
        if source_kind == DISTRIBUTED and row["referencing_position"] is not None:
            bad = []
            if row["confdeltype"] in ("n", "d"):
                bad.append(f"ON DELETE {ACTIONS[row['confdeltype']]}")
            if row["confupdtype"] in ("n", "d", "c"):
                bad.append(f"ON UPDATE {ACTIONS[row['confupdtype']]}")
            if bad:
                yield Violation(rel.table, name, FOREIGN_KEY_ACTION, (
                    f"Foreign key {name} from {points_at} includes {column} and has {' and '.join(bad)}, "
                    f"which Citus refuses (it would change a row's {column}, i.e. its shard). Use RESTRICT, "
                    "NO ACTION or (on delete) CASCADE, or leave the rows to the application."
                ))


def _triggers(rows: list[asyncpg.Record], relations: dict[int, _Relation],
              plan: _Layout) -> Iterable[Violation]:
    """Rule 8: triggers of distributed and reference tables call only the listed functions."""
    for row in rows:
        if row["proname"] in plan.safe_functions:
            continue
        rel = relations[row["relid"]]
        name = row["tgname"]
        function = row["proname"]
        if row["function_schema"] != "public":
            function = f"{row['function_schema']}.{function}"
        yield Violation(rel.table, name, UNSAFE_TRIGGER, (
            f"Trigger {name} on {rel.where} ({rel.placement}) calls {function}(), which is not in "
            "SAFE_TRIGGER_FUNCTIONS: on Citus it runs on the worker holding the row, outside the "
            "coordinator's distributed transaction. Do its work in the application's transaction instead, "
            "or, if it touches only its own row, add the function to SAFE_TRIGGER_FUNCTIONS."
        ))
