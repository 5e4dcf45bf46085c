"""Headers and cookies that protect people on shared computers and networks: the CSRF cookie is HttpOnly
(and Secure over HTTPS), every cookie is Secure over HTTPS, and nothing a signed-in person sees is stored
by a browser or proxy (Cache-Control: no-store)."""

from __future__ import annotations

import httpx
import pytest

from tests.accounts.helpers import api_token, make_person, web_session


def cookies_named(response: httpx.Response, name: str) -> list[str]:
    return [value for value in response.headers.get_list("set-cookie") if value.startswith(f"{name}=")]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_csrf_cookie_is_http_only_and_secure_over_https(app, scheme: str) -> None:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://127.0.0.1") as client:
        page = await client.get("/login")
        language = await client.get("/language?to=en&next=/")
    [csrf] = cookies_named(page, "vb_csrf")
    assert "httponly" in csrf.lower()
    assert ("secure" in csrf.lower()) == (scheme == "https")
    [language_cookie] = cookies_named(language, "vb_lang")
    assert ("secure" in language_cookie.lower()) == (scheme == "https")
    # The page still carries the token itself (forms and htmx's header), which is why no script needs the cookie.
    assert 'name="_csrf_token"' in page.text and "x-csrftoken" in page.text


async def test_signed_in_responses_are_never_stored(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/")
    assert "no-store" not in anonymous.headers.get("cache-control", "")
    person = await make_person()
    await web_session(client, person)
    for path in ("/", "/profile", "/bookings", "/book"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path
    client.cookies.clear()
    api = await client.get("/api/v1/me", headers=await api_token(person))
    assert api.status_code == 200 and api.headers["cache-control"] == "no-store"
    # Static files stay cacheable for everyone.
    static = await client.get("/static/app.css")
    assert "no-store" not in static.headers.get("cache-control", "")
