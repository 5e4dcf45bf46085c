"""Fuzzing the JSON API from its own OpenAPI document (schemathesis) against a real app process.

Every operation the live document lists is called with generated input, valid and invalid: once without
credentials and once as an owner with a bearer token and a pet. Whatever is sent, the API must never answer
5xx, and every 4xx must be problem details (RFC 9457) that a client can show: application/problem+json with
"status", "title" and "detail".

Per operation: schemathesis' coverage cases (boundary values, missing and wrong-typed fields, unexpected
methods: a fixed list) and then Hypothesis examples in both generation modes, derandomized (the same inputs on
every run, so a CI failure reproduces) and without an example database (nothing written into the repo).

schemathesis' pytest integration (``schemathesis.pytest.from_fixture``) cannot run on pytest 9.2 (it reads
``Node._nodeid``, which pytest removed), so the phases are driven here with the schema's own public pieces:
``get_all_operations``, ``iter_coverage_cases``, ``APIOperation.as_strategy``, ``Case.call`` and
``Case.validate_response``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup

from tests.conftest import run_cli, vetbook_command
from tests.servers import LiveServer, start_app, stop
from web.accounts.validation import SPECIES
from web.core.embedded_postgres import LocalPostgres

OWNER_EMAIL = "fuzz-owner@example.test"
OWNER_PASSWORD = "fuzz-owner-password-1"
# Hypothesis examples per operation and generation mode (the coverage cases come on top).
MAX_EXAMPLES = 10
REQUEST_TIMEOUT = 15
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # Generation speed depends on the schema and the machine, not on the app under test.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@dataclass
class FuzzTarget:
    server: LiveServer
    pg_server: LocalPostgres
    database: str
    owner_id: str
    owner_token: str
    pet_id: str

    def mint_api_token(self) -> str:
        """A new bearer token of the owner, written straight to the database (no password hashing: cheap)."""
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.pg_server.psql(
            "INSERT INTO auth_sessions (token_hash, user_id, kind, expires_at) "
            f"VALUES (decode('{digest}', 'hex'), '{self.owner_id}', 'api', now() + interval '1 hour')",
            database=self.database,
        )
        return token


@dataclass
class FuzzRun:
    """What one persona's run sent and got back, for the failure report and the sanity checks."""

    persona: str
    failures: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    requests: int = 0

    def answered(self, label: str, low: int, high: int) -> int:
        return sum(count for (op, status), count in self.statuses.items() if op == label and low <= status <= high)


@pytest.fixture(scope="module")
def fuzz_target(
    pg_server: LocalPostgres, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name, template=template_database)
    database_url = pg_server.url(name)
    # Generated logins all come from 127.0.0.1: generous limits let them reach the code behind the limits
    # (the limits themselves are tested in test_rate_limits.py).
    env = {"VETBOOK_LOGIN_IP_RATE_LIMIT": "100000/300", "VETBOOK_LOGIN_RATE_LIMIT": "100000/300"}
    log_path = tmp_path_factory.mktemp("fuzz-server") / "server.log"
    server = None
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            # The owner and the server start side by side: each is a child process that spends seconds importing.
            created = pool.submit(run_cli, *vetbook_command(
                "user", "create", "--email", OWNER_EMAIL, "--password", OWNER_PASSWORD, "--role", "owner",
                "--name", "Fuzz Owner"), database_url=database_url)
            starting = pool.submit(start_app, database_url, log_path, env=env)
            server = starting.result()
            created.result()
        issued = httpx.post(server.url("/api/v1/auth/token"), json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        pet = httpx.post(server.url("/api/v1/pets"), json={"name": "Fuzzy", "species": "cat"},
                         headers={"Authorization": f"Bearer {token}"})
        assert pet.status_code == 201, pet.text
        yield FuzzTarget(server, pg_server, name, issued.json()["user_id"], token, pet.json()["pet_id"])
    finally:
        if server is not None:
            stop(server.process)
        pg_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", autouse=True)
def hypothesis_files_outside_the_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis caches (constants, unicode data) go to a temporary folder, never to .hypothesis/ in the repo."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    try:
        yield
    finally:
        set_hypothesis_home_dir(None)


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> schemathesis.BaseSchema:
    """The OpenAPI document as the live server serves it (so the fuzzing follows every new operation)."""
    config = schemathesis.Config.from_dict({
        "generation": {"deterministic": True, "database": "none"},
        # The document types a pet's species as any short string; half of the generated bodies use a real
        # species, so that valid pets get past validation and are written.
        "dictionaries": {"species": {"values": list(SPECIES)}},
        "parameters": {"body.species": {"dictionary": "species", "probability": 0.5}},
    })
    return schemathesis.openapi.from_url(fuzz_target.server.url("/api/schema/openapi.json"), config=config)


def problem_details_for_client_errors(ctx, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx from the API is RFC 9457 problem details a client can show to a person."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered with content-type {content_type!r}, not problem details: {response.text[:300]}"
    )
    body = json.loads(response.text)
    assert body.get("status") == response.status_code, f"problem status does not match the response: {body}"
    for key in ("title", "detail"):
        assert isinstance(body.get(key), str) and body[key].strip(), f"problem details without a {key}: {body}"
    return True


CHECKS = [not_a_server_error, problem_details_for_client_errors]
# What a failed check raises: schemathesis groups its failures (a FailureGroup, with a curl line to reproduce),
# and Hypothesis groups distinct failures of one test. Anything else (the server gone) ends the run at once.
CHECK_FAILURES = (AssertionError, BaseExceptionGroup)


def describe(failure: BaseException) -> str:
    """A failure as text: schemathesis' own groups already say everything (with a curl line to reproduce)."""
    if isinstance(failure, BaseExceptionGroup) and not isinstance(failure, FailureGroup):
        return "\n".join(describe(inner) for inner in failure.exceptions)
    return str(failure)


def _sender(target: FuzzTarget, persona: str, run: FuzzRun, session: requests.Session
            ) -> Callable[[schemathesis.Case], None]:
    def send(case: schemathesis.Case) -> None:
        if persona == "owner":
            # Revoking a token ends it: each revocation gets a token of its own, so the owner's stays valid.
            revokes = case.method.upper() == "DELETE" and case.path == "/api/v1/auth/token"
            token = target.mint_api_token() if revokes else target.owner_token
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call(session=session, timeout=REQUEST_TIMEOUT)
        run.requests += 1
        run.statuses[(case.operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    return send


def fuzz(schema: schemathesis.BaseSchema, target: FuzzTarget, persona: str) -> FuzzRun:
    run = FuzzRun(persona)
    with requests.Session() as session:
        send = _sender(target, persona, run, session)
        for operation in _operations(schema):
            _fuzz_operation(operation, schema, target, persona, run, send)
    return run


def _operations(schema: schemathesis.BaseSchema) -> Iterator[schemathesis.APIOperation]:
    for result in schema.get_all_operations():
        yield result.ok()  # a malformed operation in our own document is itself a failure


def _fuzz_operation(operation: schemathesis.APIOperation, schema: schemathesis.BaseSchema, target: FuzzTarget,
                    persona: str, run: FuzzRun, send: Callable[[schemathesis.Case], None]) -> None:
    coverage_config = schema.config.generation_for(operation=operation, phase="coverage")
    for case in schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=coverage_config
    ):
        try:
            send(case)
        except CHECK_FAILURES as exc:
            run.failures.append(f"[{persona}] coverage case of {operation.label}:\n{describe(exc)}")
    uses_pet_id = persona == "owner" and any(p.name == "pet_id" for p in operation.path_parameters)
    for mode in GenerationMode:
        strategy = operation.as_strategy(generation_mode=mode)
        if uses_pet_id:
            # Also the owner's real pet, so that generated bodies get past the lookup into validation.
            strategy = st.one_of(strategy, operation.as_strategy(
                generation_mode=mode, path_parameters={"pet_id": target.pet_id}))

        @FUZZ_SETTINGS
        @given(case=strategy)
        def examples(case: schemathesis.Case) -> None:
            send(case)

        try:
            examples()
        except CHECK_FAILURES as exc:
            run.failures.append(f"[{persona}] {mode.value} examples of {operation.label}:\n{describe(exc)}")


@pytest.mark.parametrize("persona", ["anonymous", "owner"])
def test_generated_requests_never_get_5xx_and_every_4xx_is_problem_details(
    api_schema: schemathesis.BaseSchema, fuzz_target: FuzzTarget, persona: str
) -> None:
    started = time.monotonic()
    run = fuzz(api_schema, fuzz_target, persona)
    assert not run.failures, "\n\n".join(run.failures)
    # The run was not vacuous: the owner's token and pet were really used (else everything would be 401/404).
    if persona == "owner":
        assert run.answered("GET /api/v1/me", 200, 200) > 0, run.statuses
        assert run.answered("GET /api/v1/pets/{pet_id}", 200, 200) > 0, run.statuses
        assert run.answered("POST /api/v1/pets", 201, 201) > 0, run.statuses
        assert run.answered("DELETE /api/v1/auth/token", 204, 204) > 0, run.statuses
    else:
        assert run.answered("GET /api/v1/me", 401, 401) > 0, run.statuses
        assert run.answered("GET /api/v1/me", 200, 299) == 0, run.statuses
    print(f"{persona}: {run.requests} requests in {time.monotonic() - started:.1f} s")


# ------------------------------------------------------------------ regressions: inputs that once answered 5xx

# JSON nested deeper than the interpreter's recursion limit (about 1000 levels: 10 KB of body, far below the
# 1 MB limit) made msgspec raise RecursionError instead of a DecodeError, which reached the catch-all handler as
# a 500 on every JSON operation. Found by hand next to the fuzzer: its generators do not nest that deep.
DEEPLY_NESTED_BODIES = [b"[" * 5000 + b"]" * 5000, b'{"name":' * 2000 + b'"Kiki"' + b"}" * 2000]


@pytest.mark.parametrize("body", DEEPLY_NESTED_BODIES, ids=["arrays", "objects"])
@pytest.mark.parametrize(("method", "path", "persona"), [
    ("POST", "/api/v1/auth/token", "anonymous"),
    ("POST", "/api/v1/auth/register", "anonymous"),
    ("POST", "/api/v1/pets", "owner"),
    ("PUT", "/api/v1/pets/{pet_id}", "owner"),
])
def test_deeply_nested_json_is_a_client_error_not_a_crash(
    fuzz_target: FuzzTarget, method: str, path: str, persona: str, body: bytes
) -> None:
    headers = {"content-type": "application/json"}
    if persona == "owner":
        headers["Authorization"] = f"Bearer {fuzz_target.owner_token}"
    response = httpx.request(method, fuzz_target.server.url(path.format(pet_id=fuzz_target.pet_id)),
                             content=body, headers=headers, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {"status": 400, "title": "Bad Request", "detail": "The request body is nested too deeply."}
