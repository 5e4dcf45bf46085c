"""Languages of the pages: the supported locales, the message catalogs, and which language a request gets.

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

Messages raised by Python code are ``N_("English text")`` (``web/core/messages.py``). The web side lives
apart: ``web/core/locale_middleware.py`` picks each request's language, ``web/core/templating.py`` gives
Jinja its gettext and formatting filters. This module imports neither Jinja nor ASGI.
"""

from __future__ import annotations

import functools
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from web.core.messages import Message

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
