"""Sign-up, login, sessions, tokens and CSRF through real HTTP requests to the app."""

from __future__ import annotations

import httpx
import pytest

from tests.accounts.helpers import api_token, csrf_token, make_person, web_session
from web.accounts.auth import SESSION_COOKIE
from web.accounts.tables import AuthSession, Pet, User


async def test_owner_signs_up_and_lands_on_the_profile(client: httpx.AsyncClient) -> None:
    client.headers["Accept-Language"] = "en"  # the texts below are the English pages' (tests/i18n: the others)
    token = await csrf_token(client, "/signup")
    response = await client.post("/signup", data={
        "_csrf_token": token, "name": "Ayu Lestari", "email": "Ayu.Signup@Example.test",
        "phone": "+62 812 1111 2222", "password": "long-enough-1",
    })
    assert response.status_code == 303
    assert response.headers["location"] == "/profile"
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    profile = await client.get("/profile")
    assert profile.status_code == 200
    assert "Hello, Ayu Lestari" in profile.text
    stored = await User.select(User.email, User.role, User.password_hash).where(User.email == "ayu.signup@example.test").first()
    assert stored["role"] == "owner"
    assert stored["password_hash"].startswith("$argon2id$")


async def test_signup_with_bad_fields_shows_each_error_and_writes_nothing(client: httpx.AsyncClient) -> None:
    before = await User.count()
    token = await csrf_token(client, "/signup")
    response = await client.post("/signup", data={
        "_csrf_token": token, "name": "", "email": "not-an-email", "phone": "abc", "password": "short",
    })
    assert response.status_code == 422
    for field in ("name", "email", "phone", "password"):
        assert f'data-testid="error-{field}"' in response.text
    assert await User.count() == before


async def test_form_post_without_csrf_token_is_refused_and_changes_nothing(client: httpx.AsyncClient) -> None:
    client.headers["Accept-Language"] = "en"
    before = await User.count()
    response = await client.post("/signup", data={
        "name": "Mallory", "email": "mallory@example.test", "phone": "+62 812 0000 0000", "password": "long-enough-1",
    })
    assert response.status_code == 403
    assert "form expired" in response.text
    assert await User.count() == before


async def test_login_wrong_password_and_unknown_email_get_the_same_answer(client: httpx.AsyncClient) -> None:
    client.headers["Accept-Language"] = "en"
    person = await make_person()
    token = await csrf_token(client)
    wrong_password = await client.post("/login", data={"_csrf_token": token, "email": person["email"], "password": "nope-nope-1"})
    unknown_email = await client.post("/login", data={"_csrf_token": token, "email": "ghost@example.test", "password": "nope-nope-1"})
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert "Email or password is wrong." in wrong_password.text
    assert "Email or password is wrong." in unknown_email.text
    assert SESSION_COOKIE not in client.cookies

    ok = await client.post("/login", data={"_csrf_token": token, "email": person["email"].upper(), "password": person["password"]})
    assert ok.status_code == 303 and ok.headers["location"] == "/profile"
    assert (await client.get("/profile")).status_code == 200


async def test_logout_ends_the_session_for_real(client: httpx.AsyncClient) -> None:
    person = await make_person()
    await web_session(client, person)
    stolen_cookie = client.cookies.get(SESSION_COOKIE)
    token = await csrf_token(client, "/profile")
    response = await client.post("/logout", data={"_csrf_token": token})
    assert response.status_code == 303
    # Even a copy of the cookie kept by someone else no longer works.
    client.cookies.set(SESSION_COOKIE, stolen_cookie)
    again = await client.get("/profile")
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    revoked = await AuthSession.select(AuthSession.revoked_at).where(AuthSession.user_id == person["user_id"]).first()
    assert revoked["revoked_at"] is not None


async def test_api_token_issue_use_and_revoke(client: httpx.AsyncClient) -> None:
    person = await make_person()
    issued = await client.post("/api/v1/auth/token", json={"email": person["email"], "password": person["password"]})
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "bearer" and body["role"] == "owner" and body["user_id"] == str(person["user_id"])
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await client.get("/api/v1/me", headers=headers)).json()["email"] == person["email"]
    assert (await client.delete("/api/v1/auth/token", headers=headers)).status_code == 204
    refused = await client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("body", [
    {"email": "nobody@example.test", "password": "whatever-1"},
    {"email": "owner-known@example.test", "password": "wrong-password"},
])
async def test_api_wrong_credentials_answer_401_with_one_message(client: httpx.AsyncClient, body: dict) -> None:
    if body["email"] == "owner-known@example.test" and not await User.exists().where(User.email == body["email"]):
        from web.accounts.services import create_user

        await create_user(email=body["email"], password="right-password-1", role="owner", name="Known")
    response = await client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "title": "Unauthorized", "detail": "Email or password is wrong."}


async def test_api_token_does_not_open_pages_and_cookie_does_not_open_the_api(client: httpx.AsyncClient) -> None:
    person = await make_person()
    headers = await api_token(person)
    page = await client.get("/profile", headers=headers)
    assert page.status_code == 303  # to the login page: pages ignore bearer tokens
    await web_session(client, person)
    api = await client.get("/api/v1/me")
    assert api.status_code == 401  # the API ignores the session cookie, so it needs no CSRF token


async def test_bad_api_input_is_a_clear_422_and_writes_nothing(client: httpx.AsyncClient) -> None:
    person = await make_person()
    headers = await api_token(person)
    before = await Pet.count()
    cases = [
        {"name": "Kiki"},                                      # missing species
        {"name": "Kiki", "species": "dragon"},                 # unknown enum value
        {"name": "K" * 500, "species": "cat"},                 # oversized
        {"name": 5, "species": "cat"},                         # wrong type
        {"name": "Kiki", "species": "cat", "birth_date": "tomorrow"},
        {"name": "Kiki", "species": "cat", "colour": "blue"},  # unknown field
    ]
    for body in cases:
        response = await client.post("/api/v1/pets", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert problem["status"] == 422 and problem["detail"] and problem["title"]
    malformed = await client.post("/api/v1/pets", content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert 400 <= malformed.status_code < 500
    assert await Pet.count() == before


async def test_security_headers_on_pages_and_api(client: httpx.AsyncClient) -> None:
    for path in ("/", "/login", "/api/v1/health"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


async def test_what_a_user_typed_is_escaped(client: httpx.AsyncClient) -> None:
    person = await make_person()
    await web_session(client, person)
    token = await csrf_token(client, "/pets/new")
    await client.post("/pets", data={"_csrf_token": token, "name": "<script>alert(1)</script>", "species": "cat"})
    profile = await client.get("/profile")
    assert "<script>alert(1)</script>" not in profile.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in profile.text
