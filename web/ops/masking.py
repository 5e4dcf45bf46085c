"""Masked copies for testing (design 1.2.2: the test environment is refreshed from production with data
masking): copy a database (typically one a restore check restored) into an empty one and replace every
personal value there, keeping every relation, row count and amount.

What is replaced, in one transaction on the copy (never on the source):

- people (``users``): name, email, phone and password. The fakes derive from the row's id, so they are
  consistent (the same person has the same fake name everywhere it is shown), unique where the schema
  wants it, and say nothing about the original. Passwords become a hash of a random secret: nobody can log
  in to a masked copy with a real password (``vetbook user create`` makes test accounts);
- pets' names and notes, staff names, bookings' notes and cancellation notes;
- payment records' gateway payloads (``metadata``: the gateway's notification may carry names, emails,
  card details), kept as ``{"masked": true}``; amounts, states and ids stay;
- service tables that only hold traces of people (sessions and API tokens, failed logins, the desk's owner
  look-ups, rate-limit counters) are emptied: a copy has no live sessions.

Clinics, services and slots are the business's own data and stay as they are.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess

import asyncpg

from web.accounts import passwords
from web.ops.backups import BackupError, server_major_version, tools_of

EMPTIED_TABLES = ("auth_sessions", "login_failures", "desk_owner_lookups", "rate_limit_hits")

# md5 of the id: a fake that is stable for the row and unrelated to the original value.
_MASK_STATEMENTS = """
UPDATE users SET
    name = CASE role WHEN 'owner' THEN 'Owner ' ELSE 'Staff ' END || substr(md5(user_id::text), 1, 6),
    email = 'user-' || replace(user_id::text, '-', '') || '@example.invalid',
    phone = CASE WHEN phone IS NULL THEN NULL
                 ELSE '+628' || lpad(numbered.n::text, 10, '0') END,
    password_hash = $1
FROM (SELECT user_id AS id, row_number() OVER (ORDER BY user_id) AS n FROM users) AS numbered
WHERE numbered.id = users.user_id;
UPDATE pets SET name = 'Pet ' || substr(md5(pet_id::text), 1, 6),
                notes = CASE WHEN notes IS NULL THEN NULL ELSE '(masked)' END;
UPDATE staff SET name = 'Staff ' || substr(md5(staff_id::text), 1, 6);
UPDATE bookings SET notes = CASE WHEN notes IS NULL THEN NULL ELSE '(masked)' END,
                    cancellation_notes = CASE WHEN cancellation_notes IS NULL THEN NULL ELSE '(masked)' END
WHERE notes IS NOT NULL OR cancellation_notes IS NOT NULL;
UPDATE payment_records SET metadata = '{"masked": true}'::jsonb WHERE metadata IS NOT NULL;
"""


def _run(args: list[str], what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, timeout=3600)
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({result.returncode}): {result.stderr.decode(errors='replace')[-1500:]}")
    return result


async def _is_empty(url: str) -> bool:
    connection = await asyncpg.connect(url)
    try:
        return not await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p'))")
    finally:
        await connection.close()


async def _mask(url: str) -> None:
    unusable = await asyncio.to_thread(passwords.hash_password, secrets.token_urlsafe(32))
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            for statement in (part.strip() for part in _MASK_STATEMENTS.split(";")):
                if statement:
                    await connection.execute(statement, *([unusable] if "$1" in statement else []))
            await connection.execute("TRUNCATE " + ", ".join(EMPTIED_TABLES))
    finally:
        await connection.close()


async def masked_copy(source_url: str, target_url: str) -> dict:
    """Copy ``source_url``'s database into the empty database at ``target_url`` (pg_dump | pg_restore, the
    servers' own tools) and mask the copy. Returns the row counts of the copy's tables."""
    if not await _is_empty(target_url):
        raise BackupError("the target database is not empty: masking copies only into an empty database")
    source_tools = tools_of(await server_major_version(source_url))
    target_tools = tools_of(await server_major_version(target_url))
    dump = await asyncio.to_thread(_run, [str(source_tools / "pg_dump"), "-Fc", "--no-owner", "--no-privileges",
                                          "-d", source_url], "pg_dump")
    await asyncio.to_thread(_run_restore, target_tools, target_url, dump.stdout)
    await _mask(target_url)
    connection = await asyncpg.connect(target_url)
    try:
        tables = [row[0] for row in await connection.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') "
            "AND NOT relispartition ORDER BY relname")]
        return {table: await connection.fetchval(f'SELECT count(*) FROM "{table}"') for table in tables}
    finally:
        await connection.close()


def _run_restore(tools, target_url: str, dump: bytes) -> None:
    result = subprocess.run([str(tools / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                             "-d", target_url], input=dump, capture_output=True, timeout=3600)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed ({result.returncode}): {result.stderr.decode(errors='replace')[-1500:]}")
