"""Jinja in the reader's language: gettext whose catalog is the request's, the language switcher's links,
and the filters that format money, dates, times and durations with Babel."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from web.core import formatting
from web.core.i18n import LANGUAGE_NAMES, translate, translations
from web.core.locale_middleware import current_locale, locale_of
from web.core.urls import safe_local_path

# ---------------------------------------------------------------------------------------- switching


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
    # One per rendered form that writes: a double click or a retried request repeats it, not the write.
    environment.globals["new_idempotency_key"] = lambda: secrets.token_urlsafe(16)
    environment.filters.update({
        "translate": _translate_filter,
        "money": _money_filter,
        "date": _date_filter,
        "time": _time_filter,
        "datetime": _datetime_filter,
        "minutes": _minutes_filter,
        "zone_abbreviation": formatting.zone_abbreviation,
    })
