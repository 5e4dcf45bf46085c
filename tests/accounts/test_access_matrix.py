"""Every route of the app, tried by every kind of person: each gets exactly what it should.

The table below must name every route the app has: a new route without expectations fails
``test_every_route_has_expectations``, so nobody can add a page or endpoint without deciding who may use it.
Pages take the session cookie, the API a bearer token; someone else's object answers 404 (not 403), so
ids cannot be probed; a signed-out visitor of a page is sent to the login page (303), of the API gets 401.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT, make_person
from tests.db.factories import local_start
from web.accounts import services
from web.accounts.auth import SESSION_COOKIE
from web.booking import services as booking_services
from web.clinics.tables import Clinic, Service
from web.core import sql
from web.payments import services as payment_services

PERSONAS = ("anonymous", "owner", "other_owner", "receptionist", "other_receptionist", "manager", "other_manager")

# Shorthands for rows of the table.
ALL = dict.fromkeys(PERSONAS)


def expect(default: int, **overrides: int) -> dict[str, int]:
    return {persona: overrides.get(persona, default) for persona in PERSONAS}


REDIRECT_TO_LOGIN = 303
# The desk (staff only): owners are refused, signed-out visitors sent to log in.
DESK_PAGE = expect(200, anonymous=REDIRECT_TO_LOGIN, owner=403, other_owner=403)
DESK_FORM_422 = expect(422, anonymous=REDIRECT_TO_LOGIN, owner=403, other_owner=403)
DESK_NOT_FOUND = expect(404, anonymous=REDIRECT_TO_LOGIN, owner=403, other_owner=403)


def clinic_staff_only(staff_answer: int) -> dict[str, int]:
    """A clinic's slot pages: its own staff get ``staff_answer``, another clinic's staff 404, owners 403."""
    return expect(403, anonymous=REDIRECT_TO_LOGIN, receptionist=staff_answer, manager=staff_answer,
                  other_receptionist=404, other_manager=404)


SLOT_PAGE = clinic_staff_only(200)
SLOT_FORM_422 = clinic_staff_only(422)
VALID_PET = {"name": "Matrix Cat", "species": "cat"}

# (method, route path as Litestar names it) -> (concrete path template, body kind, expectations)
MATRIX: dict[tuple[str, str], tuple[str, str | None, dict[str, int]]] = {
    ("GET", "/"): ("/", None, expect(200)),
    ("GET", "/clinics/{clinic_id:uuid}/services"): ("/clinics/{clinic_a}/services", None, expect(200)),
    ("GET", "/login"): ("/login", None, expect(200)),
    ("POST", "/login"): ("/login", "form:wrong_login", expect(401)),
    ("GET", "/signup"): ("/signup", None, expect(200)),
    ("POST", "/signup"): ("/signup", "form:empty", expect(422)),
    ("POST", "/logout"): ("/logout", "form:empty", expect(303)),
    ("GET", "/profile"): ("/profile", None, expect(200, anonymous=REDIRECT_TO_LOGIN)),
    ("GET", "/profile/password"): ("/profile/password", None, expect(200, anonymous=REDIRECT_TO_LOGIN)),
    ("POST", "/profile/password"): ("/profile/password", "form:empty", expect(422, anonymous=REDIRECT_TO_LOGIN)),
    ("GET", "/pets/new"): ("/pets/new", None, expect(403, anonymous=REDIRECT_TO_LOGIN, owner=200, other_owner=200)),
    ("POST", "/pets"): ("/pets", "form:pet", expect(403, anonymous=REDIRECT_TO_LOGIN, owner=303, other_owner=303)),
    ("GET", "/pets/{pet_id:uuid}/edit"): (
        "/pets/{owner_pet}/edit", None, expect(403, anonymous=REDIRECT_TO_LOGIN, owner=200, other_owner=404)),
    ("POST", "/pets/{pet_id:uuid}"): (
        "/pets/{owner_pet}", "form:pet", expect(403, anonymous=REDIRECT_TO_LOGIN, owner=303, other_owner=404)),
    ("GET", "/staff"): ("/staff", None, expect(403, anonymous=REDIRECT_TO_LOGIN, manager=200, other_manager=200)),
    ("POST", "/staff"): ("/staff", "form:empty", expect(403, anonymous=REDIRECT_TO_LOGIN, manager=422, other_manager=422)),
    ("POST", "/staff/{user_id:uuid}/deactivate"): (
        "/staff/{target_receptionist}/deactivate", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, manager=303, other_manager=404)),
    ("POST", "/staff/{user_id:uuid}/activate"): (
        "/staff/{target_receptionist}/activate", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, manager=303, other_manager=404)),
    # Anyone may pick a language (a signed-in person's choice is also saved); its 303 goes back to `next`.
    ("GET", "/language"): ("/language?to=en&next=/profile", None, expect(303)),
    ("GET", "/static/{file_path:path}"): ("/static/app.css", None, expect(200)),
    ("GET", "/api/v1/health"): ("/api/v1/health", None, expect(200)),
    # Public like liveness (probes of a load balancer): node states and WAL positions, no names or secrets.
    ("GET", "/api/v1/ready"): ("/api/v1/ready", None, expect(200)),
    # Only with the metrics token (VETBOOK_METRICS_TOKEN), which no person's session or API token is.
    ("GET", "/metrics"): ("/metrics", None, expect(404)),
    ("GET", "/api/schema"): ("/api/schema", None, expect(200)),
    ("GET", "/api/schema/{path:str}"): ("/api/schema/openapi.json", None, expect(200)),
    ("POST", "/api/v1/auth/token"): ("/api/v1/auth/token", "json:wrong_login", expect(401)),
    ("DELETE", "/api/v1/auth/token"): ("/api/v1/auth/token", None, expect(204, anonymous=401)),
    ("POST", "/api/v1/auth/register"): ("/api/v1/auth/register", "json:empty", expect(422)),
    ("GET", "/api/v1/me"): ("/api/v1/me", None, expect(200, anonymous=401)),
    ("POST", "/api/v1/me/password"): ("/api/v1/me/password", "json:empty", expect(422, anonymous=401)),
    ("GET", "/api/v1/pets"): ("/api/v1/pets", None, expect(403, anonymous=401, owner=200, other_owner=200)),
    ("POST", "/api/v1/pets"): ("/api/v1/pets", "json:pet", expect(403, anonymous=401, owner=201, other_owner=201)),
    ("GET", "/api/v1/pets/{pet_id:uuid}"): (
        "/api/v1/pets/{owner_pet}", None, expect(403, anonymous=401, owner=200, other_owner=404)),
    ("PUT", "/api/v1/pets/{pet_id:uuid}"): (
        "/api/v1/pets/{owner_pet}", "json:pet", expect(403, anonymous=401, owner=200, other_owner=404)),
    ("GET", "/api/v1/clinics"): ("/api/v1/clinics", None, expect(200, anonymous=401)),
    ("GET", "/api/v1/clinics/{clinic_id:uuid}/services"): (
        "/api/v1/clinics/{clinic_a}/services", None, expect(200, anonymous=401)),
    ("GET", "/api/v1/slots"): (
        "/api/v1/slots?clinic_id={clinic_a}&service_id={service_a}&date=2030-01-02", None, expect(200, anonymous=401)),
    ("POST", "/api/v1/slots"): ("/api/v1/slots", "json:empty", expect(422, anonymous=401, owner=403, other_owner=403)),
    ("POST", "/api/v1/reservations"): (
        "/api/v1/reservations", "json:empty", expect(403, anonymous=401, owner=422, other_owner=422)),
    ("DELETE", "/api/v1/reservations/{reservation_id:uuid}"): (
        "/api/v1/reservations/{missing}", None, expect(403, anonymous=401, owner=404, other_owner=404)),
    ("POST", "/api/v1/reservations/{reservation_id:uuid}/confirm"): (
        "/api/v1/reservations/{missing}/confirm", "json:empty", expect(403, anonymous=401, owner=422, other_owner=422)),
    ("GET", "/api/v1/bookings"): ("/api/v1/bookings", None, expect(200, anonymous=401)),
    ("GET", "/api/v1/bookings/{booking_id:uuid}"): ("/api/v1/bookings/{missing}", None, expect(404, anonymous=401)),
    ("POST", "/api/v1/bookings/{booking_id:uuid}/cancel"): (
        "/api/v1/bookings/{missing}/cancel", "json:empty", expect(422, anonymous=401)),
    ("POST", "/api/v1/bookings/{booking_id:uuid}/reschedule"): (
        "/api/v1/bookings/{missing}/reschedule", "json:empty", expect(422, anonymous=401)),
    ("POST", "/api/v1/bookings/{booking_id:uuid}/check-in"): (
        "/api/v1/bookings/{missing}/check-in", "json:empty", expect(422, anonymous=401, owner=403, other_owner=403)),
    ("POST", "/api/v1/bookings/{booking_id:uuid}/complete"): (
        "/api/v1/bookings/{missing}/complete", "json:empty", expect(422, anonymous=401, owner=403, other_owner=403)),
    ("POST", "/api/v1/bookings/{booking_id:uuid}/no-show"): (
        "/api/v1/bookings/{missing}/no-show", "json:empty", expect(422, anonymous=401, owner=403, other_owner=403)),
    ("POST", "/api/v1/bookings/{booking_id:uuid}/payments"): (
        "/api/v1/bookings/{missing}/payments", "json:empty", expect(403, anonymous=401, owner=422, other_owner=422)),
    ("POST", "/api/v1/payments/{payment_id:uuid}/mark-paid"): (
        "/api/v1/payments/{missing}/mark-paid", None, expect(404, anonymous=401, owner=403, other_owner=403)),
    # A gateway's call: no account, trusted by its signature only (an unsigned one is refused for everyone).
    ("GET", "/api/v1/clinics/{clinic_id:uuid}/refunds-to-pay-by-hand"): (
        "/api/v1/clinics/{clinic_a}/refunds-to-pay-by-hand", None,
        expect(403, anonymous=401, receptionist=200, manager=200, other_receptionist=404, other_manager=404)),
    ("POST", "/api/v1/refunds/{refund_id:uuid}/paid-by-hand"): (
        "/api/v1/refunds/{missing}/paid-by-hand", "json:empty", expect(404, anonymous=401, owner=403, other_owner=403)),
    ("POST", "/api/v1/payments/{provider:str}/notifications"): (
        "/api/v1/payments/sandbox/notifications", "json:empty", expect(403)),
    ("GET", "/sandbox/pay/{payment_id:uuid}"): (
        "/sandbox/pay/{owner_payment}", None, expect(404, anonymous=REDIRECT_TO_LOGIN, owner=200)),
    ("POST", "/sandbox/pay/{payment_id:uuid}"): (
        "/sandbox/pay/{missing}", "form:empty", expect(404, anonymous=REDIRECT_TO_LOGIN)),
    # A live stream that would stay open is not tried here (tests/live/ follows streams): bookings of a
    # clinic nobody here works at are refused to everyone.
    ("GET", "/live/clinics/{clinic_id:uuid}/days/{day:date}"): (
        "/live/clinics/{missing}/days/2030-01-02?topics=bookings", None, expect(403)),
    # --- owner pages: finding, holding and confirming a slot
    # Anyone may browse the finder and its live slot list; only owners hold (a visitor is sent to log in).
    ("GET", "/book"): ("/book", None, expect(200)),
    ("GET", "/book/slots"): ("/book/slots", None, expect(200)),
    ("POST", "/book/hold"): ("/book/hold", "form:empty", expect(403, anonymous=303, owner=422, other_owner=422)),
    ("POST", "/book/pet"): ("/book/pet", "form:pet", expect(403, anonymous=REDIRECT_TO_LOGIN, owner=303, other_owner=303)),
    ("GET", "/reservations/{reservation_id:uuid}"): (
        "/reservations/{missing}", None, expect(403, anonymous=REDIRECT_TO_LOGIN, owner=404, other_owner=404)),
    ("POST", "/reservations/{reservation_id:uuid}/confirm"): (
        "/reservations/{missing}/confirm", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, owner=404, other_owner=404)),
    ("POST", "/reservations/{reservation_id:uuid}/release"): (
        "/reservations/{missing}/release", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, owner=404, other_owner=404)),
    # --- owner pages: my bookings, paying, cancelling, rescheduling
    # Staff get 403 from the owner-only guard; another owner's booking is 404. An empty form is refused with a
    # message (422) and changes nothing.
    ("GET", "/bookings"): ("/bookings", None, expect(403, anonymous=REDIRECT_TO_LOGIN, owner=200, other_owner=200)),
    ("GET", "/bookings/{booking_id:uuid}"): (
        "/bookings/{owner_booking}", None, expect(403, anonymous=REDIRECT_TO_LOGIN, owner=200, other_owner=404)),
    ("GET", "/bookings/{booking_id:uuid}/pay"): (
        "/bookings/{owner_booking}/pay", None, expect(403, anonymous=REDIRECT_TO_LOGIN, owner=200, other_owner=404)),
    ("POST", "/bookings/{booking_id:uuid}/pay"): (
        "/bookings/{owner_booking}/pay", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, owner=422, other_owner=404)),
    ("GET", "/bookings/{booking_id:uuid}/cancel"): (
        "/bookings/{owner_booking}/cancel", None, expect(403, anonymous=REDIRECT_TO_LOGIN, owner=200, other_owner=404)),
    ("POST", "/bookings/{booking_id:uuid}/cancel"): (
        "/bookings/{owner_booking}/cancel", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, owner=422, other_owner=404)),
    ("GET", "/bookings/{booking_id:uuid}/reschedule"): (
        "/bookings/{owner_booking}/reschedule", None,
        expect(403, anonymous=REDIRECT_TO_LOGIN, owner=200, other_owner=404)),
    ("POST", "/bookings/{booking_id:uuid}/reschedule"): (
        "/bookings/{owner_booking}/reschedule", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, owner=422, other_owner=404)),
    # --- desk: day view, check-in, walk-ins, desk payments
    ("GET", "/desk"): ("/desk", None, DESK_PAGE),
    ("GET", "/desk/grid"): ("/desk/grid", None, DESK_PAGE),
    ("GET", "/desk/book"): ("/desk/book", None, DESK_PAGE),
    ("POST", "/desk/book"): ("/desk/book", "form:empty", DESK_FORM_422),
    # A code nobody has: staff are told so (404); another clinic's booking is not found either.
    ("GET", "/desk/bookings"): ("/desk/bookings?code=ZZZZ-ZZZZ", None, DESK_NOT_FOUND),
    ("GET", "/desk/bookings/{booking_id:uuid}"): ("/desk/bookings/{missing}", None, DESK_NOT_FOUND),
    ("POST", "/desk/bookings/{booking_id:uuid}/check-in"): (
        "/desk/bookings/{missing}/check-in", "form:empty", DESK_FORM_422),
    ("POST", "/desk/bookings/{booking_id:uuid}/complete"): (
        "/desk/bookings/{missing}/complete", "form:empty", DESK_FORM_422),
    ("POST", "/desk/bookings/{booking_id:uuid}/no-show"): (
        "/desk/bookings/{missing}/no-show", "form:empty", DESK_FORM_422),
    ("POST", "/desk/bookings/{booking_id:uuid}/payment"): (
        "/desk/bookings/{missing}/payment", "form:empty", DESK_NOT_FOUND),
    # --- desk: slot generation and blocking
    # Staff of clinic A only; staff of clinic B get 404 (the clinic is not theirs), owners 403. An empty
    # form is a 422 with the fields to fix.
    ("GET", "/desk/refunds"): ("/desk/refunds?clinic={clinic_a}", None, SLOT_PAGE),
    ("POST", "/desk/refunds/{refund_id:uuid}/paid"): ("/desk/refunds/{missing}/paid", "form:empty", DESK_NOT_FOUND),
    ("GET", "/desk/slots"): ("/desk/slots?clinic={clinic_a}", None, SLOT_PAGE),
    ("GET", "/desk/slots/generate"): ("/desk/slots/generate?clinic={clinic_a}", None, SLOT_PAGE),
    ("POST", "/desk/slots/generate"): ("/desk/slots/generate?clinic={clinic_a}", "form:empty", SLOT_FORM_422),
    ("POST", "/desk/slots/block"): ("/desk/slots/block?clinic={clinic_a}", "form:empty", SLOT_FORM_422),
    ("POST", "/desk/slots/unblock"): ("/desk/slots/unblock?clinic={clinic_a}", "form:empty", SLOT_FORM_422),
    ("POST", "/desk/slots/cancel-and-block"): (
        "/desk/slots/cancel-and-block?clinic={clinic_a}", "form:empty", SLOT_FORM_422),
    # --- manager: analytics and database health
    ("GET", "/manage/analytics"): (
        "/manage/analytics", None, expect(403, anonymous=REDIRECT_TO_LOGIN, manager=200, other_manager=200)),
    # Clinic A's figures: its manager only; another clinic's manager is told it does not exist.
    ("GET", "/manage/analytics.csv"): (
        "/manage/analytics.csv?clinic={clinic_a}", None,
        expect(403, anonymous=REDIRECT_TO_LOGIN, manager=200, other_manager=404)),
    ("POST", "/manage/analytics/refresh"): (
        "/manage/analytics/refresh", "form:empty", expect(403, anonymous=REDIRECT_TO_LOGIN, manager=303, other_manager=303)),
    # --- manager: reconciliation with the payment gateways (a clinic's day; another clinic's manager: 404)
    ("GET", "/manage/payments/reconciliation"): (
        "/manage/payments/reconciliation?clinic={clinic_a}", None,
        expect(403, anonymous=REDIRECT_TO_LOGIN, manager=200, other_manager=404)),
    ("GET", "/manage/payments/reconciliation.csv"): (
        "/manage/payments/reconciliation.csv?clinic={clinic_a}", None,
        expect(403, anonymous=REDIRECT_TO_LOGIN, manager=200, other_manager=404)),
    ("POST", "/manage/payments/reconciliation/check"): (
        "/manage/payments/reconciliation/check", "form:empty",
        expect(403, anonymous=REDIRECT_TO_LOGIN, manager=303, other_manager=303)),
    ("GET", "/manage/database"): (
        # Only for managers of every clinic (tests/analytics/test_database_health.py): the whole database's figures.
        "/manage/database", None, expect(403, anonymous=REDIRECT_TO_LOGIN)),
}


def app_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for route in app.routes:
        for method in getattr(route, "methods", ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            # The OpenAPI plugin registers its documents as concrete paths once served.
            path = "/api/schema/{path:str}" if route.path.startswith("/api/schema/") else route.path
            routes.add((method, path))
    return routes


def test_every_route_has_expectations(app) -> None:
    assert app_routes(app) == set(MATRIX), "add the new route to MATRIX with what each person may do"


@pytest.fixture(scope="module")
async def world(app) -> dict:
    clinics = await Clinic.insert(
        Clinic(name=f"Matrix A {uuid.uuid4().hex[:6]}", timezone="Asia/Jakarta"),
        Clinic(name=f"Matrix B {uuid.uuid4().hex[:6]}", timezone="Asia/Jayapura"),
    ).returning(Clinic.clinic_id)
    clinic_a, clinic_b = clinics[0]["clinic_id"], clinics[1]["clinic_id"]
    people = {
        "owner": await make_person("owner"),
        "other_owner": await make_person("owner"),
        "receptionist": await make_person("receptionist", clinic_id=clinic_a),
        "other_receptionist": await make_person("receptionist", clinic_id=clinic_b),
        "manager": await make_person("manager", clinic_id=clinic_a),
        "other_manager": await make_person("manager", clinic_id=clinic_b),
    }
    target = await make_person("receptionist", clinic_id=clinic_a)
    owner_user = await services.load_current_user(people["owner"]["user_id"])
    pet = await services.add_pet(owner_user, {"name": "Milo", "species": "cat"})
    service = await Service.insert(
        Service(clinic_id=clinic_a, name="Matrix check-up", duration_minutes=30, price=150000)
    ).returning(Service.service_id)
    payment = await _sandbox_payment(owner_user, clinic_a, service[0]["service_id"], pet["pet_id"])
    return {
        "people": people,
        "ids": {"clinic_a": clinic_a, "owner_pet": pet["pet_id"], "target_receptionist": target["user_id"],
                "service_a": service[0]["service_id"], "missing": uuid.uuid4(), "owner_payment": payment,
                "owner_booking": await sql.fetchval(
                    "SELECT booking_id FROM payment_records WHERE payment_id = $1", payment)},
    }


async def _sandbox_payment(owner_user, clinic_id, service_id, pet_id) -> uuid.UUID:
    """The owner's booking in clinic A (through the engine), waiting for a sandbox payment it started."""
    start = local_start({"timezone": "Asia/Jakarta"}, days_ahead=5)
    slot_id = await sql.fetchval(
        "INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, capacity, remaining) "
        "VALUES ($1, $2, $3, $4, $5, 1, 1) RETURNING slot_id",
        clinic_id, service_id, start.date(), start, start + timedelta(minutes=30),
    )
    held = await booking_services.hold(owner_user, slot_id, pet_id)
    booking = await booking_services.confirm(owner_user, held["reservation_id"], held["lock_token"])
    payment, _ = await payment_services.create_payment(owner_user, booking["booking_id"], "sandbox",
                                                       f"matrix-{uuid.uuid4()}")
    return payment["payment_id"]


async def _request_as(client: httpx.AsyncClient, persona: str, world: dict, method: str, path: str, body: str | None):
    client.cookies.clear()
    headers: dict[str, str] = {}
    person = world["people"].get(persona)
    is_api = path.startswith("/api/")
    if person is not None:
        # A fresh session for every request: a route like /logout must not spoil the next check.
        token, _ = await services.create_session(person["user_id"], "api" if is_api else "web")
        if is_api:
            headers["Authorization"] = f"Bearer {token}"
        else:
            client.cookies.set(SESSION_COOKIE, token)
    kwargs: dict = {"headers": headers}
    if body is not None:
        kind, name = body.split(":")
        payload = {
            "empty": {}, "pet": dict(VALID_PET),
            # A new unknown email each time, so the per-account login limit never answers instead.
            "wrong_login": {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.test", "password": "wrong-password"},
        }[name]
        if kind == "form":
            page = await client.get("/login")
            payload["_csrf_token"] = CSRF_INPUT.search(page.text).group(1)
            kwargs["data"] = payload
        else:
            kwargs["json"] = payload
    return await client.request(method, path, **kwargs)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda route: f"{route[0]} {route[1]}")
async def test_route_answers_each_person_as_expected(client: httpx.AsyncClient, world: dict, route) -> None:
    template, body, expectations = MATRIX[route]
    path = template.format(**{key: str(value) for key, value in world["ids"].items()})
    answers = {}
    for persona in PERSONAS:
        response = await _request_as(client, persona, world, route[0], path, body)
        answers[persona] = response.status_code
        if response.status_code == REDIRECT_TO_LOGIN and expectations[persona] == REDIRECT_TO_LOGIN \
                and persona == "anonymous" and route[1] not in ("/logout", "/language"):
            assert response.headers["location"].startswith("/login"), response.headers["location"]
        if path.startswith("/api/") and response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["status"] == response.status_code
    assert answers == expectations
