"""Passwords: every failed login costs one argon2 verification whatever the account (so timing tells
nothing), the rules a new password must pass, and changing a password, which ends every other session."""

from __future__ import annotations

import uuid

import argon2
import httpx
import pytest

from tests.accounts.helpers import CSRF_INPUT, api_token, csrf_token, make_person, web_session
from web.accounts import passwords, services
from web.accounts.auth import SESSION_COOKIE
from web.accounts.services import NO_PASSWORD
from web.core import sql

EN = {"Accept-Language": "en"}
GOOD_PASSWORD = "kucing-oren-suka-tidur"


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hashes argon2 verifies, in order (the real verification still runs)."""
    real = passwords._hasher()
    seen: list[str] = []

    class Spy:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, hash_: str, password: str) -> bool:
            seen.append(hash_)
            return real.verify(hash_, password)

    spy = Spy()
    monkeypatch.setattr(passwords, "_hasher", lambda: spy)
    return seen


async def test_every_failed_login_costs_one_real_argon2_verification(app, verifications: list[str]) -> None:
    real = await make_person(password="correct-horse-1")
    inactive = await make_person(password="correct-horse-1")
    await sql.execute("UPDATE users SET is_active = false WHERE user_id = $1", inactive["user_id"])
    made_at_desk = await sql.fetchval(
        "INSERT INTO users (email, name, phone, role, password_hash) VALUES ($1, 'Walk-in', '+62 811 1', 'owner', $2) "
        "RETURNING email", f"desk-{uuid.uuid4().hex[:8]}@example.test", NO_PASSWORD)
    real_hash = await sql.fetchval("SELECT password_hash FROM users WHERE user_id = $1", real["user_id"])
    cost = argon2.extract_parameters(real_hash)
    attempts = {
        "wrong password": (real["email"], "not-the-password"),
        "unknown email": ("nobody-here@example.test", "not-the-password"),
        "account made at the desk": (made_at_desk, "anything-at-all"),
        "account made at the desk, empty password": (made_at_desk, ""),
        "inactive account, right password": (inactive["email"], "correct-horse-1"),
        "empty email": ("", "not-the-password"),
    }
    for case, (email, password) in attempts.items():
        verifications.clear()
        with pytest.raises(services.InvalidCredentials):
            await services.authenticate(email, password, f"192.0.2.{len(case)}")
        assert len(verifications) == 1, case
        # A real argon2 hash with the same cost as people's own, never a quick refusal.
        assert argon2.extract_parameters(verifications[0]) == cost, case


@pytest.mark.parametrize("password", ["password", "12345678", "password123", "1234567890", "qwertyuiop",
                                      "iloveyou12", "indonesia1", "aaaaaaaaaaaa", "Short-1"])
async def test_sign_up_refuses_short_and_common_passwords(client: httpx.AsyncClient, password: str) -> None:
    email = f"weak-{uuid.uuid4().hex[:8]}@example.test"
    response = await client.post("/api/v1/auth/register", json={
        "name": "Weak Password", "email": email, "phone": "+62 812 3333 4444", "password": password})
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["password"]
    assert await sql.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


async def test_sign_up_refuses_a_password_made_of_the_persons_own_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={
        "name": "Wayan Sudirta", "email": f"wayan-{uuid.uuid4().hex[:6]}@example.test", "phone": "+62 812 3333 4444",
        "password": "wayansudirta"})
    assert response.status_code == 422
    assert "too easy to guess" in response.json()["errors"][0]["message"]


async def test_the_sign_up_page_explains_the_password_rule(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client, "/signup")
    response = await client.post("/signup", headers=EN, data={
        "_csrf_token": token, "name": "Ayu", "email": f"ayu-{uuid.uuid4().hex[:6]}@example.test",
        "phone": "+62 812 1111 2222", "password": "password123"})
    assert response.status_code == 422
    assert "too common or too easy to guess" in response.text
    assert "At least 10 characters" in response.text


async def test_a_good_password_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={
        "name": "Good Password", "email": f"good-{uuid.uuid4().hex[:8]}@example.test", "phone": "+62 812 3333 4444",
        "password": GOOD_PASSWORD})
    assert response.status_code == 201, response.text


async def sessions_work(client: httpx.AsyncClient, cookie: str, headers: dict) -> tuple[bool, bool]:
    """Whether another device's web session and another app's token still work."""
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as other_device:
        other_device.cookies.set(SESSION_COOKIE, cookie)
        page = await other_device.get("/profile")
        api = await other_device.get("/api/v1/me", headers=headers)
    return page.status_code == 200, api.status_code == 200


@pytest.mark.parametrize("role", ["owner", "receptionist"])
async def test_changing_the_password_ends_every_other_session(client: httpx.AsyncClient, role: str) -> None:
    clinic_id = await sql.fetchval("SELECT clinic_id FROM clinics LIMIT 1") if role == "receptionist" else None
    if clinic_id is None and role == "receptionist":
        clinic_id = await sql.fetchval("INSERT INTO clinics (name, address, timezone) VALUES ($1, 'Jl. 1', "
                                       "'Asia/Jakarta') RETURNING clinic_id", f"Clinic {uuid.uuid4().hex[:6]}")
    person = await make_person(role, clinic_id=clinic_id, password="correct-horse-1")
    other_device, _ = await services.create_session(person["user_id"], "web")
    other_app = await api_token(person)
    client.headers.update(EN)
    await web_session(client, person)
    page = await client.get("/profile/password")
    assert page.status_code == 200 and 'data-testid="password-form"' in page.text
    token = CSRF_INPUT.search(page.text).group(1)

    wrong = await client.post("/profile/password", data={
        "_csrf_token": token, "current_password": "not-my-password", "new_password": GOOD_PASSWORD})
    assert wrong.status_code == 422 and "This is not your current password." in wrong.text
    weak = await client.post("/profile/password", data={
        "_csrf_token": token, "current_password": "correct-horse-1", "new_password": "password123"})
    assert weak.status_code == 422 and "too common or too easy to guess" in weak.text
    assert await sessions_work(client, other_device, other_app) == (True, True)

    changed = await client.post("/profile/password", data={
        "_csrf_token": token, "current_password": "correct-horse-1", "new_password": GOOD_PASSWORD})
    assert changed.status_code == 303 and changed.headers["location"] == "/profile?done=password"
    profile = await client.get(changed.headers["location"])
    assert profile.status_code == 200 and 'data-testid="password-changed"' in profile.text
    assert await sessions_work(client, other_device, other_app) == (False, False)
    with pytest.raises(services.InvalidCredentials):
        await services.authenticate(person["email"], "correct-horse-1", "192.0.2.99")
    assert (await services.authenticate(person["email"], GOOD_PASSWORD, "192.0.2.99"))["user_id"] == person["user_id"]


async def test_the_api_changes_the_password_and_keeps_its_own_token(client: httpx.AsyncClient) -> None:
    person = await make_person(password="correct-horse-1")
    mine, other = await api_token(person), await api_token(person)
    weak = await client.post("/api/v1/me/password", headers=mine,
                             json={"current_password": "correct-horse-1", "new_password": "12345678"})
    assert weak.status_code == 422
    assert [error["field"] for error in weak.json()["errors"]] == ["new_password"]
    changed = await client.post("/api/v1/me/password", headers=mine,
                                json={"current_password": "correct-horse-1", "new_password": GOOD_PASSWORD})
    assert changed.status_code == 204, changed.text
    assert (await client.get("/api/v1/me", headers=mine)).status_code == 200
    assert (await client.get("/api/v1/me", headers=other)).status_code == 401
