"""The app leaves no session state on pooled connections (web/core/connections.py relies on it to skip
asyncpg's reset on release, and PgBouncer's transaction mode needs it): settings are transaction-local,
advisory locks transaction-level, LISTEN only on the live broker's own connection, no SET outside SET LOCAL,
no prepared statements, cursors or temporary tables by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from web.settings import PROJECT_ROOT

WEB = PROJECT_ROOT / "web"

# What would outlive the transaction on the server session, with why it would leak.
SESSION_STATE = {
    "set_config(..., false) keeps the setting for the session": re.compile(
        r"set_config\([^)]*,\s*(false|\$\d+)\s*\)", re.IGNORECASE),
    "session-level advisory lock (use pg_advisory_xact_lock)": re.compile(
        r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.IGNORECASE),
    "SET without LOCAL changes the session": re.compile(
        r"""["']\s*SET\s+(?!LOCAL\b)(SESSION\s+)?[a-z_.]+\s*(=|TO\b)""", re.IGNORECASE),
    "LISTEN on a pooled connection": re.compile(r"""["']\s*LISTEN\s""", re.IGNORECASE),
    "server-side prepared statement by hand": re.compile(r"""["']\s*PREPARE\s""", re.IGNORECASE),
    "cursor that may outlive the transaction": re.compile(r"\bDECLARE\s+\w+\s+.*CURSOR\b", re.IGNORECASE),
    "temporary table lives for the session": re.compile(r"CREATE\s+(TEMP|TEMPORARY)\s+TABLE", re.IGNORECASE),
}

# The live broker LISTENs on a connection it opens itself, never one from the pool.
OWN_CONNECTION_LISTENERS = {WEB / "live" / "broker.py"}


def _sources() -> list[Path]:
    return sorted(path for path in WEB.rglob("*.py") if "translations" not in path.parts)


@pytest.mark.parametrize("rule", sorted(SESSION_STATE))
def test_no_module_leaves_session_state(rule: str) -> None:
    pattern = SESSION_STATE[rule]
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
                 for path in _sources()
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if pattern.search(line)]
    assert offenders == [], f"{rule}:\n" + "\n".join(offenders)


def test_only_the_live_broker_adds_listeners() -> None:
    listening = {path for path in _sources() if "add_listener(" in path.read_text()}
    assert listening == OWN_CONNECTION_LISTENERS


def test_the_rules_catch_what_they_name() -> None:
    # Each rule must match a line that breaks it, or the scan above would pass by matching nothing.
    breaking = {
        "set_config(..., false) keeps the setting for the session": "SELECT set_config('app.user_id', $1, false)",
        "session-level advisory lock (use pg_advisory_xact_lock)": "SELECT pg_advisory_lock(42)",
        "SET without LOCAL changes the session": "await conn.execute(\"SET statement_timeout = '5s'\")",
        "LISTEN on a pooled connection": "await conn.execute('LISTEN vetbook_changes')",
        "server-side prepared statement by hand": "await conn.execute('PREPARE hold AS SELECT 1')",
        "cursor that may outlive the transaction": "DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT 1",
        "temporary table lives for the session": "CREATE TEMP TABLE scratch (id int)",
    }
    assert set(breaking) == set(SESSION_STATE)
    for rule, line in breaking.items():
        assert SESSION_STATE[rule].search(line), rule
    assert not SESSION_STATE["SET without LOCAL changes the session"].search("\"SET LOCAL lock_timeout = '2s'\"")
    assert not SESSION_STATE["SET without LOCAL changes the session"].search("UPDATE slots s\nSET remaining = 1")
