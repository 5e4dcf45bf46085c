"""Pages in the reader's language, through real HTTP requests to the app: chosen from Accept-Language,
switched with the switcher, remembered by cookie and, for a signed-in person, in users.locale; money, dates
and durations written the locale's way; the JSON API stays English."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest

from tests.accounts.helpers import csrf_token, make_person, web_session
from web.accounts import services as account_services
from web.accounts.tables import User
from web.clinics.tables import Clinic, Service
from web.core import sql
from web.core.i18n import LANGUAGE_COOKIE

# One phrase of the home page in each language, written out here rather than taken from the catalogs.
HOME_HEADING = {
    "id": "Buat janji kunjungan untuk hewan peliharaan Anda",
    "en": "Book a visit for your pet",
    "ja": "ペットの診察を予約",
}
HTML_LANG = re.compile(r'<html lang="([^"]+)">')


def page_language(response: httpx.Response) -> str:
    match = HTML_LANG.search(response.text)
    assert match, "the page has no <html lang>"
    return match.group(1)


def language_of_home(response: httpx.Response) -> str:
    """Which language the home page is in, judged by its heading, and checked against <html lang>."""
    shown = [locale for locale, heading in HOME_HEADING.items() if f"<h1>{heading}</h1>" in response.text]
    assert len(shown) == 1, f"expected the heading in exactly one language, found {shown}"
    assert page_language(response) == shown[0] == response.headers["content-language"]
    return shown[0]


async def get_without_accept_language(client: httpx.AsyncClient, path: str) -> httpx.Response:
    request = client.build_request("GET", path)
    request.headers.pop("accept-language", None)
    return await client.send(request)


@pytest.fixture
async def priced_clinic(app) -> AsyncIterator[dict]:
    """A clinic in WITA with one 45-minute service at 150,000 rupiah, removed afterwards."""
    clinic = (await Clinic.insert(
        Clinic(name=f"Klinik Bahasa {uuid.uuid4().hex[:6]}", timezone="Asia/Makassar")
    ).returning(Clinic.clinic_id))[0]
    await Service.insert(
        Service(clinic_id=clinic["clinic_id"], name="Vaksinasi", duration_minutes=45, price=150000)
    )
    try:
        yield clinic
    finally:
        await Service.delete().where(Service.clinic_id == clinic["clinic_id"])
        await Clinic.delete().where(Clinic.clinic_id == clinic["clinic_id"])


# ------------------------------------------------------------------------------ from the browser


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7", "id"),
        ("ja-JP,ja;q=0.9", "ja"),
        ("en-GB,en;q=0.9", "en"),
        # The first language we have wins, by the browser's weights.
        ("fr-FR,fr;q=0.9,ja;q=0.5,en;q=0.4", "ja"),
        ("en;q=0.3,id;q=0.8", "id"),
        # None we have: Indonesian, the language of the clinics' country.
        ("fr-FR,de;q=0.8", "id"),
    ],
)
async def test_home_page_comes_in_the_browsers_language(
    client: httpx.AsyncClient, accept_language: str, expected: str
) -> None:
    response = await client.get("/", headers={"Accept-Language": accept_language})
    assert response.status_code == 200
    assert language_of_home(response) == expected
    assert "Accept-Language" in response.headers["vary"]


async def test_a_client_naming_no_language_gets_indonesian(client: httpx.AsyncClient) -> None:
    response = await get_without_accept_language(client, "/")
    assert language_of_home(response) == "id"


async def test_the_switcher_links_every_other_language_back_to_the_same_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/login?next=/profile", headers={"Accept-Language": "ja"})
    assert page_language(response) == "ja"
    links = dict(re.findall(r'<a href="(/language\?[^"]+)" lang="[a-z]+" hreflang="([a-z]+)"', response.text))
    by_language = {language: url for url, language in links.items()}
    assert set(by_language) == {"id", "en"}  # Japanese is the current one: shown, not linked
    assert by_language["en"] == "/language?to=en&amp;next=%2Flogin%3Fnext%3D%2Fprofile"
    assert 'aria-current="true" data-testid="language-current">日本語<' in response.text


# ------------------------------------------------------------------------------ the switcher


async def test_switching_sets_a_cookie_that_wins_over_accept_language(client: httpx.AsyncClient) -> None:
    switched = await client.get("/language", params={"to": "ja", "next": "/signup"},
                                headers={"Accept-Language": "en"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/signup"
    cookie = switched.headers["set-cookie"]
    assert cookie.startswith(f"{LANGUAGE_COOKIE}=ja;")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=31536000" in cookie
    assert client.cookies.get(LANGUAGE_COOKIE) == "ja"

    # The browser still prefers English, but the person chose Japanese.
    home = await client.get("/", headers={"Accept-Language": "en"})
    assert language_of_home(home) == "ja"

    await client.get("/language", params={"to": "id"})
    assert language_of_home(await client.get("/", headers={"Accept-Language": "ja"})) == "id"


@pytest.mark.parametrize(
    ("next_target", "location"),
    [
        ("/clinics?page=2", "/clinics?page=2"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/line\r\nSet-Cookie: x=1", "/"),
        (None, "/"),
    ],
)
async def test_the_switcher_goes_back_only_to_a_page_of_this_site(
    client: httpx.AsyncClient, next_target: str | None, location: str
) -> None:
    params = {"to": "en"} | ({"next": next_target} if next_target is not None else {})
    response = await client.get("/language", params=params)
    assert response.status_code == 303
    assert response.headers["location"] == location


@pytest.mark.parametrize("target", ["fr", "", "../en"])
async def test_an_unknown_language_is_refused_and_nothing_is_remembered(
    client: httpx.AsyncClient, target: str
) -> None:
    response = await client.get("/language", params={"to": target, "next": "/"}, headers={"Accept-Language": "ja"})
    assert response.status_code == 400
    assert "set-cookie" not in response.headers or LANGUAGE_COOKIE not in response.headers["set-cookie"]
    assert page_language(response) == "ja"
    assert "この言語はご利用いただけません。" in response.text


async def test_a_signed_in_persons_choice_is_saved_and_follows_them_without_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    person = await make_person()
    await web_session(client, person)
    switched = await client.get("/language", params={"to": "ja", "next": "/profile"},
                                headers={"Accept-Language": "en"})
    assert switched.status_code == 303
    saved = await User.select(User.locale).where(User.user_id == person["user_id"]).first()
    assert saved["locale"] == "ja"

    # Another device: a new session, no language cookie, a browser that prefers Indonesian.
    client.cookies.clear()
    await web_session(client, person)
    profile = await client.get("/profile", headers={"Accept-Language": "id-ID,id;q=0.9"})
    assert profile.status_code == 200
    assert page_language(profile) == "ja"
    assert "<h1>こんにちは、Test ownerさん</h1>" in profile.text
    assert "飼い主" in profile.text  # the role, by its Japanese name

    # Their saved choice wins over a language cookie left on a shared device, too.
    client.cookies.set(LANGUAGE_COOKIE, "en")
    assert page_language(await client.get("/profile")) == "ja"

    # Signed out, the same browser follows its cookie again.
    client.cookies.clear()
    client.cookies.set(LANGUAGE_COOKIE, "en")
    assert language_of_home(await client.get("/", headers={"Accept-Language": "ja"})) == "en"


async def test_switching_while_signed_out_saves_nothing_to_any_account(client: httpx.AsyncClient) -> None:
    before = await sql.fetchval("SELECT count(*) FROM users WHERE locale IS NOT NULL")
    response = await client.get("/language", params={"to": "ja"})
    assert response.status_code == 303
    assert await sql.fetchval("SELECT count(*) FROM users WHERE locale IS NOT NULL") == before


# ------------------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("accept_language", "price", "duration", "zone_line"),
    [
        ("id", "Rp150.000", "45 mnt", "WITA"),
        ("en", "IDR150,000", "45 min", "WITA"),
        ("ja", "IDR150,000", "45 分", "WITA"),
    ],
)
async def test_money_and_durations_are_written_the_locales_way(
    client: httpx.AsyncClient, priced_clinic: dict, accept_language: str, price: str, duration: str,
    zone_line: str,
) -> None:
    response = await client.get(f"/clinics/{priced_clinic['clinic_id']}/services",
                                headers={"Accept-Language": accept_language})
    assert response.status_code == 200
    assert page_language(response) == accept_language
    assert f'data-testid="service-price">{price}<' in response.text
    assert f'data-testid="service-duration">{duration}<' in response.text
    assert re.search(rf'data-testid="clinic-timezone">[^<]*· {zone_line}<', response.text)


async def test_the_home_page_names_the_clinics_zone_in_each_language(
    client: httpx.AsyncClient, priced_clinic: dict
) -> None:
    card_zone = {
        "id": "Waktu setempat: WITA (Asia/Makassar)",
        "en": "Local time: WITA (Asia/Makassar)",
        "ja": "現地時間：WITA（Asia/Makassar）",
    }
    for locale, text in card_zone.items():
        response = await client.get("/", headers={"Accept-Language": locale})
        assert f'data-testid="clinic-timezone">{text}<' in response.text


@pytest.mark.parametrize(
    ("accept_language", "born", "species"),
    [("id", "lahir 3 Mar 2020", "Kucing"), ("en", "born Mar 3, 2020", "Cat"), ("ja", "2020/03/03生まれ", "猫")],
)
async def test_dates_and_species_on_the_profile_are_in_the_readers_language(
    client: httpx.AsyncClient, accept_language: str, born: str, species: str
) -> None:
    person = await make_person()
    owner = await account_services.load_current_user(person["user_id"])
    await account_services.add_pet(owner, {"name": "Mochi", "species": "cat", "birth_date": "2020-03-03"},
                                   today=date(2026, 1, 1))
    await web_session(client, person)
    profile = await client.get("/profile", headers={"Accept-Language": accept_language})
    assert f"{species} · {born}" in profile.text


# ------------------------------------------------------------------------------ messages from Python


async def test_form_errors_from_validation_are_translated_with_their_numbers(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client, "/signup")
    response = await client.post(
        "/signup", headers={"Accept-Language": "ja"},
        data={"_csrf_token": token, "name": "", "email": "not-an-email", "phone": "abc", "password": "short"},
    )
    assert response.status_code == 422
    assert page_language(response) == "ja"
    errors = dict(re.findall(r'data-testid="error-(\w+)">([^<]+)<', response.text))
    assert errors == {
        "name": "この項目は必須です。",
        "email": "name@example.com のような形式でメールアドレスを入力してください。",
        "phone": "+62 812 3456 7890 のような形式で電話番号を入力してください。",
        "password": "10文字以上で入力してください。",
    }


async def test_the_api_answers_in_english_whatever_the_browser_prefers(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", headers={"Accept-Language": "ja"},
                                 json={"name": "", "email": "x", "phone": "1", "password": "short"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"] == "Some fields need attention."
    assert {"field": "password", "message": "Use at least 10 characters."} in problem["errors"]
    assert "content-language" not in response.headers


async def test_the_login_error_is_translated(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    response = await client.post(
        "/login", headers={"Accept-Language": "id"},
        data={"_csrf_token": token, "email": f"ghost-{uuid.uuid4().hex[:8]}@example.test", "password": "nope-nope-1"},
    )
    assert response.status_code == 401
    assert 'data-testid="login-error">Email atau kata sandi salah.<' in response.text


async def test_error_pages_are_translated_also_where_litestar_answers_before_any_middleware(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/no-such-page", headers={"Accept-Language": "ja"})
    assert missing.status_code == 404
    assert page_language(missing) == "ja"
    assert "<h1>見つかりません</h1>" in missing.text
    assert "このページは存在しないか、お使いのアカウントではご利用いただけません。" in missing.text

    forged = await client.post("/signup", headers={"Accept-Language": "id"}, data={"name": "Mallory"})
    assert forged.status_code == 403
    assert "Formulir Anda sudah kedaluwarsa atau berasal dari situs lain." in forged.text


async def test_a_role_refusal_is_translated(client: httpx.AsyncClient) -> None:
    person = await make_person()
    await web_session(client, person)
    refused = await client.get("/staff", headers={"Accept-Language": "id"})
    assert refused.status_code == 403
    assert "Halaman ini tidak tersedia untuk akun Anda." in refused.text
