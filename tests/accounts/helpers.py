"""Helpers for tests that talk to the app over HTTP: CSRF tokens from pages, people with sessions."""

from __future__ import annotations

import re
import uuid

import httpx

from web.accounts import services
from web.accounts.auth import SESSION_COOKIE

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def csrf_token(client: httpx.AsyncClient, page: str = "/login") -> str:
    """Load a page (which sets the CSRF cookie) and return the token its forms carry."""
    response = await client.get(page)
    match = CSRF_INPUT.search(response.text)
    assert match, f"no CSRF input on {page}"
    return match.group(1)


async def make_person(role: str = "owner", clinic_id=None, password: str = "correct-horse-1") -> dict:
    """A new account of ``role`` with a unique email; returns its row plus the password."""
    user = await services.create_user(
        email=f"{role}-{uuid.uuid4().hex[:10]}@example.test", password=password, role=role,
        name=f"Test {role}", clinic_id=clinic_id,
    )
    return {**user, "password": password}


async def web_session(client: httpx.AsyncClient, user: dict) -> None:
    """Give ``client`` a signed-in web session for ``user`` (without the login form's rate limit)."""
    token, _ = await services.create_session(user["user_id"], "web")
    client.cookies.set(SESSION_COOKIE, token)


async def api_token(user: dict) -> dict[str, str]:
    token, _ = await services.create_session(user["user_id"], "api")
    return {"Authorization": f"Bearer {token}"}
