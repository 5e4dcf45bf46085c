"""Masked copies (issue 14, design 1.2.2): ``vetbook mask --into URL`` copies a database with the demo data
and its booking history into an empty one; no original email, phone or name of a person or pet survives
anywhere in the copy (searched in a full plain dump of it), while every relation, row count and amount is
the same."""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg

from tests.conftest import cloned_database, run_cli, vetbook_command
from tests.ops.helpers import count_rows
from web.ops.backups import tools_of

# Domain tables: their rows, relations and amounts must be the same in the copy.
KEPT_TABLES = ("clinics", "services", "staff", "users", "pets", "slots", "reservations", "bookings",
               "booking_history", "payment_records", "analytics_refreshes")
RELATIONS = {
    "bookings of owners and their pets": "SELECT count(*) FROM bookings b JOIN users u ON u.user_id = b.user_id "
                                         "JOIN pets p ON p.pet_id = b.pet_id AND p.owner_id = u.user_id",
    "payments of bookings": "SELECT count(*) FROM payment_records r JOIN bookings b ON b.booking_id = r.booking_id",
    "pets per owner": "SELECT string_agg(c::text, ',' ORDER BY c) FROM (SELECT count(*) c FROM pets GROUP BY owner_id) x",
}
SUMS = {
    "bookings": "SELECT sum(final_amount)::text || '/' || sum(refunded_amount)::text FROM bookings",
    "payments": "SELECT sum(amount)::text || '/' || coalesce(sum(refund_amount), 0)::text FROM payment_records",
    "places": "SELECT sum(remaining)::text || '/' || sum(capacity)::text FROM slots",
}


async def _facts(url: str) -> dict:
    connection = await asyncpg.connect(url)
    try:
        facts = {f"count {t}": await connection.fetchval(f"SELECT count(*) FROM {t}") for t in KEPT_TABLES}
        facts |= {name: await connection.fetchval(query) for name, query in (RELATIONS | SUMS).items()}
        return facts
    finally:
        await connection.close()


async def _personal_values(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        values = set()
        for row in await connection.fetch("SELECT email, phone, name FROM users"):
            values |= {value for value in row.values() if value}
        values |= {row["name"] for row in await connection.fetch("SELECT name FROM pets")}
        values |= {row["name"] for row in await connection.fetch("SELECT name FROM staff")}
        return values
    finally:
        await connection.close()


def test_a_masked_copy_keeps_relations_counts_and_sums_and_no_personal_value(pg_server, template_database) -> None:
    with cloned_database(pg_server, template_database, "mask_src") as source, \
            cloned_database(pg_server, None, "mask_dst") as target:
        run_cli(*vetbook_command("demo", "--history", "14"), database_url=source)
        before = asyncio.run(_facts(source))
        personal = asyncio.run(_personal_values(source))
        assert before["count bookings"] > 50 and len(personal) > 20

        masked = run_cli(*vetbook_command("mask", "--into", target), database_url=source)
        assert '"masked_copy": true' in masked.stdout

        assert asyncio.run(_facts(target)) == before
        dump = subprocess.run([str(tools_of(pg_server.major_version) / "pg_dump"), "--data-only", "-d", target],
                              capture_output=True, text=True, check=True).stdout
        # Short values (a 3-letter pet name) could appear inside unrelated text by chance: only values of
        # 5 characters or more are searched, which every email and phone is.
        survivors = sorted(value for value in personal if len(value) >= 5 and value in dump)
        assert survivors == []
        assert asyncio.run(count_rows(target, "auth_sessions")) == 0
        # The source is untouched.
        assert asyncio.run(_personal_values(source)) == personal

        refused = run_cli(*vetbook_command("mask", "--into", target), database_url=source, check=False)
        assert refused.returncode == 1 and "not empty" in refused.stderr

