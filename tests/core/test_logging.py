"""Logs (issue 14, web/core/logging.py): with VETBOOK_LOG_FORMAT=json every line the app process writes,
uvicorn's included, is a JSON object; the lines of a request carry its id (the client's X-Request-ID when
well-formed, else one made here, echoed in the response); a failed login's password appears nowhere; keys
that name secrets are redacted whoever logs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.conftest import run_cli, vetbook_command
from tests.servers import running_app
from web.core.logging import REDACTED, _redact_secrets

PASSWORD = "Hunter2-very-secret-xyz"


async def test_json_lines_carry_the_request_id_and_never_the_password(pg_server, template_database,
                                                                     tmp_path: Path) -> None:
    from tests.conftest import cloned_database

    with cloned_database(pg_server, template_database, "logs") as url:
        run_cli(*vetbook_command("demo"), database_url=url)
        log_file = tmp_path / "app.log"
        with running_app(url, log_file, env={"VETBOOK_LOG_FORMAT": "json"}) as app:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=30) as http:
                refused = await http.post("/api/v1/auth/token", headers={"X-Request-ID": "login-test-0001"},
                                          json={"email": "owner@vetbook.test", "password": PASSWORD})
                malformed = await http.get("/api/v1/health", headers={"X-Request-ID": "bad id!"})
                missing = await http.get("/api/v1/health")
            written = app.log()

    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "login-test-0001"
    for answer in (malformed, missing):
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    assert malformed.headers["x-request-id"] != missing.headers["x-request-id"]

    lines = [json.loads(line) for line in written.splitlines() if line.strip()]  # every line is JSON
    of_login = [line for line in lines if line.get("request_id") == "login-test-0001"]
    events = {line["event"] for line in of_login}
    assert "login refused" in events
    # uvicorn's access line of that request, through the same logging.
    assert any(line.get("logger") == "uvicorn.access" and "/api/v1/auth/token" in line["event"] for line in of_login)
    assert all(line.get("request_id") for line in lines if line.get("logger") == "uvicorn.access")
    assert PASSWORD not in written


def test_keys_that_name_secrets_are_redacted() -> None:
    event = {"event": "x", "password": "p", "new_password": "p", "lock_token": "t", "Authorization": "Bearer t",
             "client_secret": "s", "booking_id": "b"}
    redacted = _redact_secrets(None, "info", dict(event))
    assert {key for key, value in redacted.items() if value == REDACTED} == {
        "password", "new_password", "lock_token", "Authorization", "client_secret"}
    assert redacted["booking_id"] == "b" and redacted["event"] == "x"
