"""Languages of the pages: which one a request gets, the message catalogs, and Jinja's gettext.

Pages come in Bahasa Indonesia, English and Japanese. The language of a request is, in this order:

1. the saved choice of the signed-in person (``users.locale``), so that they see their language on every
   device they sign in on;
2. the ``vb_lang`` cookie, set when anyone picks a language with the switcher (``GET /language``);
3. the browser's ``Accept-Language``, the first of its languages we have;
4. Indonesian. VetBook's clinics are in Indonesia and most of the people who book there read Indonesian;
   a client that names no language we have (or none at all: curl, a bot, an old app) gets the language
   of the country rather than English.

The source strings are English: an English page uses no catalog at all. Catalogs live in
``web/translations/<locale>/LC_MESSAGES/messages.po``; the app compiles each one in memory the first time
it is needed (a fresh clone needs no build step), or reads ``messages.mo`` when ``make compile-messages``
wrote one that is not older than its ``.po``.

Messages raised by Python code (validation, services, error handlers) are ``N_("English text")``: a ``str``
holding the English text, which the JSON API and the logs use as they are (the API stays English), and
which pages translate when they render it with the ``translate`` filter.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from http.cookies import CookieError, SimpleCookie
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.types import Message as ASGIMessage

from web.core import formatting

DEFAULT_LOCALE = "id"
# In the order the switcher lists them. Each is named in its own language (an autonym), never translated.
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English", "ja": "日本語"}
SUPPORTED_LOCALES = tuple(LANGUAGE_NAMES)
# The language the source strings are written in: it needs no catalog.
SOURCE_LOCALE = "en"
# Old Java and Android clients still send ISO 639's withdrawn code for Indonesian.
_LANGUAGE_ALIASES = {"in": "id"}

LANGUAGE_COOKIE = "vb_lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
CATALOG_DOMAIN = "messages"

# A header longer than this (or with more entries) is read only up to there: the work per request stays small.
_MAX_ACCEPT_LANGUAGE = 1000
_MAX_LANGUAGE_RANGES = 30

_current_locale: ContextVar[str | None] = ContextVar("vetbook_locale", default=None)


# ------------------------------------------------------------------------------- messages from Python


class Message(str):
    """An English message that a page can show in the reader's language later.

    It *is* the English text (formatted with its parameters), so code that treats it as a string (the JSON
    API, logs, tests comparing text) sees English; ``translate`` looks up ``msgid`` and fills in ``params``.
    """

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: dict[str, Any] | None = None) -> Message:
        params = dict(params or {})
        instance = super().__new__(cls, msgid % params if params else msgid)
        instance.msgid = msgid
        instance.params = params
        return instance

    def __reduce__(self):  # pickling keeps the message id and parameters
        return (Message, (self.msgid, self.params))


def N_(msgid: str, **params: Any) -> Message:
    """Mark ``msgid`` for the catalogs (``N_`` is one of the extractor's keywords) and keep it translatable.

    Parameters use Python's named placeholders: ``N_("Use at most %(count)d characters.", count=80)``.
    """
    return Message(msgid, params)


# ------------------------------------------------------------------------------------------- catalogs


def catalog_path(locale: str) -> Path:
    return TRANSLATIONS_DIR / locale / "LC_MESSAGES" / f"{CATALOG_DOMAIN}.po"


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of ``locale`` (loaded once per process); English and unknown locales get none."""
    if locale == SOURCE_LOCALE or locale not in LANGUAGE_NAMES:
        return NullTranslations()
    return load_catalog(catalog_path(locale))


def load_catalog(po_path: Path) -> NullTranslations:
    """The catalog at ``po_path`` compiled: from the ``.mo`` beside it when that is not older than the
    ``.po``, else compiled from the ``.po`` in memory. No ``.po``: no translations."""
    if not po_path.exists():
        return NullTranslations()
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
        with mo_path.open("rb") as mo_file:
            return Translations(mo_file, domain=CATALOG_DOMAIN)
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, domain=CATALOG_DOMAIN)
    compiled = BytesIO()
    # Fuzzy entries are left out, as msgfmt does: a guess is not a translation.
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=CATALOG_DOMAIN)


def translate(text: object, locale: str) -> str:
    """``text`` in ``locale``: a ``Message`` by its id and parameters; a plain string by itself (unknown
    strings, e.g. messages of parts not translated yet, come back unchanged); None as ''."""
    if text is None:
        return ""
    catalog = translations(locale)
    if isinstance(text, Message):
        translated = catalog.gettext(text.msgid)
        if not text.params:
            return translated
        # A parameter can be a message too (a status inside a sentence): it is shown in the same language.
        params = {name: translate(value, locale) if isinstance(value, Message) else value
                  for name, value in text.params.items()}
        return translated % params
    if not isinstance(text, str):
        text = str(text)
    return catalog.gettext(text) if text else text


# -------------------------------------------------------------------------------------- negotiation


def supported_locale(tag: object) -> str | None:
    """Our locale for a language tag (``ja-JP`` -> ``ja``, ``in-ID`` -> ``id``), or None."""
    if not isinstance(tag, str):
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    primary = _LANGUAGE_ALIASES.get(primary, primary)
    return primary if primary in LANGUAGE_NAMES else None


def parse_accept_language(header: str | None) -> list[str]:
    """The language ranges of an ``Accept-Language`` header, most wanted first (q=0 ranges left out)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header[:_MAX_ACCEPT_LANGUAGE].split(",")[:_MAX_LANGUAGE_RANGES]):
        tag, _, parameters = item.partition(";")
        tag = tag.strip()
        if not tag:
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            # Sorted by quality, then by the order the browser wrote them in.
            ranked.append((-min(quality, 1.0), position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate_locale(accept_language: str | None, cookie: str | None, user: object | None) -> str:
    """The language of a page: the signed-in person's saved choice, else the switcher's cookie, else the
    browser's first language we have, else Indonesian (see the module's docstring for why)."""
    for explicit in (getattr(user, "locale", None), cookie):
        locale = supported_locale(explicit)
        if locale is not None:
            return locale
    for tag in parse_accept_language(accept_language):
        locale = supported_locale(tag)
        if locale is not None:
            return locale
    return DEFAULT_LOCALE


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _cookie(scope: Scope, name: str) -> str | None:
    header = _header(scope, b"cookie")
    if not header:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:  # a malformed Cookie header counts as no cookie
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel else None


def locale_of(scope: Scope) -> str:
    """The language of this request, worked out once and kept in the scope (``scope["locale"]``).

    The middleware sets it for every page; this works too where no middleware ran (Litestar answers an
    unknown path before any middleware), so that its error page still comes in the right language."""
    locale = scope.get("locale")
    if locale is None:
        locale = negotiate_locale(
            _header(scope, b"accept-language"), _cookie(scope, LANGUAGE_COOKIE), scope.get("user")
        )
        scope["locale"] = locale
    return locale


def current_locale() -> str:
    """The language of the request being handled (Indonesian outside a request)."""
    return _current_locale.get() or DEFAULT_LOCALE


def _is_page(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return not (path.startswith("/api/") or path.startswith("/static/"))


def locale_middleware(app: ASGIApp) -> ASGIApp:
    """Pick the language of each page request (after authentication: a signed-in person's choice counts)
    and say which one it is: ``Content-Language``, and ``Vary: Accept-Language`` for caches. The JSON API
    and static files are left alone: they are the same in every language."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_page(scope):
            await app(scope, receive, send)
            return
        locale = locale_of(scope)

        async def send_with_language(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-language", locale.encode()),
                    (b"vary", b"Accept-Language, Cookie"),
                ]
            await send(message)

        token = _current_locale.set(locale)
        try:
            await app(scope, receive, send_with_language)
        finally:
            _current_locale.reset(token)

    return middleware


# ---------------------------------------------------------------------------------------- switching


def safe_local_path(target: object) -> str | None:
    """``target`` if it is a path on this site (never ``//host``, ``/\\host`` or a full URL), else None."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(character) < 0x20 or ord(character) == 0x7F for character in target):
        return None
    # Re-quote what a hand-made link may carry unquoted, so that the Location header is plain ASCII.
    return quote(target[:500], safe="/?&=#%:@!$'()*+,;~-._")


def switch_url(locale: str, next_path: str) -> str:
    return "/language?" + urlencode({"to": locale, "next": next_path})


def _page_to_return_to(request: Any) -> str:
    """Where the switcher brings someone back to: this page, or for a form's answer (a POST) the page the
    form was on, since the form's address may accept no GET."""
    if request.method == "GET":
        query = request.url.query
        return request.url.path + (f"?{query}" if query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and safe_local_path(referer.path):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/"


@dataclass(frozen=True)
class LanguageOption:
    code: str
    name: str
    url: str
    current: bool


# ------------------------------------------------------------------------------------------- Jinja


def _context_locale(context: Context) -> str:
    request = context.get("request")
    if request is not None:
        return locale_of(request.scope)
    # An imported macro's context has no request: use the request being handled.
    return current_locale()


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(_context_locale(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, number: int) -> str:
    return translations(_context_locale(context)).ngettext(singular, plural, number)


@pass_context
def _pgettext(context: Context, message_context: str, message: str) -> str:
    return translations(_context_locale(context)).pgettext(message_context, message)


@pass_context
def _npgettext(context: Context, message_context: str, singular: str, plural: str, number: int) -> str:
    return translations(_context_locale(context)).npgettext(message_context, singular, plural, number)


@pass_context
def _translate_filter(context: Context, text: object) -> str:
    """``{{ error | translate }}``: a message from Python code in the page's language. Its result is plain
    text (escaped on output), unlike ``_()``, whose msgid is trusted template source."""
    return translate(text, _context_locale(context))


@pass_context
def _page_locale(context: Context) -> str:
    return _context_locale(context)


@pass_context
def _language_options(context: Context) -> list[LanguageOption]:
    locale = _context_locale(context)
    request = context.get("request")
    back_to = _page_to_return_to(request) if request is not None else "/"
    return [
        LanguageOption(code, name, switch_url(code, back_to), code == locale)
        for code, name in LANGUAGE_NAMES.items()
    ]


@pass_context
def _money_filter(context: Context, amount: Decimal | int | float | None, currency: str = "IDR") -> str:
    return formatting.money(amount, currency, locale=_context_locale(context))


@pass_context
def _date_filter(context: Context, value: date | datetime | None, zone: str | None = None,
                 format: str = "medium") -> str:
    return formatting.format_day(value, _context_locale(context), zone=zone, format=format)


@pass_context
def _time_filter(context: Context, value: datetime | time | None, zone: str | None = None,
                 format: str = "short") -> str:
    return formatting.format_clock(value, _context_locale(context), zone=zone, format=format)


@pass_context
def _datetime_filter(context: Context, value: datetime | None, zone: str | None = None,
                     format: str = "medium") -> str:
    return formatting.format_moment(value, _context_locale(context), zone=zone, format=format)


@pass_context
def _minutes_filter(context: Context, minutes: int | None) -> str:
    return formatting.minutes(minutes, _context_locale(context))


def configure_jinja(environment: Environment) -> None:
    """Jinja's i18n extension with newstyle gettext whose catalog is the current request's.

    ``install_gettext_translations`` would bind one catalog to the Environment, which every request
    shares; concurrent requests in different languages would then race. The callables installed here
    look the catalog up from the template's ``request`` instead."""
    environment.add_extension("jinja2.ext.i18n")
    # `{% trans %}` blocks are written across lines in templates; their msgids are the trimmed text.
    environment.policies["ext.i18n.trimmed"] = True
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext
    )
    environment.globals["page_locale"] = _page_locale
    environment.globals["language_options"] = _language_options
    environment.filters.update({
        "translate": _translate_filter,
        "money": _money_filter,
        "date": _date_filter,
        "time": _time_filter,
        "datetime": _datetime_filter,
        "minutes": _minutes_filter,
        "zone_abbreviation": formatting.zone_abbreviation,
    })

