"""The message catalogs: every message the code and templates mark is translated into Indonesian and
Japanese, nothing stale is left in them, and they compile.

The messages are extracted afresh here, with babel.cfg, exactly as ``make messages`` does: a new ``_()`` in a
template or ``N_()`` in Python fails this test until ``make messages`` has run and someone has translated it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

from web.core import i18n
from web.core.messages import N_
from web.settings import PROJECT_ROOT

TRANSLATED_LOCALES = [locale for locale in i18n.SUPPORTED_LOCALES if locale != i18n.SOURCE_LOCALE]
POT_PATH = i18n.TRANSLATIONS_DIR / "messages.pot"
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
FIX = "run `make messages`, then translate the new entries (no fuzzy flags) in web/translations/*/LC_MESSAGES/messages.po"

MessageKey = tuple[str, str | None]  # (msgid, msgctxt)


@pytest.fixture(scope="module")
def extracted() -> dict[MessageKey, list[str]]:
    """Every message marked in web/ and templates/, with where it is marked."""
    with (PROJECT_ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[MessageKey, list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(PROJECT_ROOT), method_map, options_map
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault((msgid, context), []).append(f"{filename}:{lineno}")
    return found


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=locale)


def keys(catalog: Catalog) -> set[MessageKey]:
    return {(message.id if isinstance(message.id, str) else message.id[0], message.context)
            for message in catalog if message.id}


def test_extraction_finds_the_messages_of_templates_and_of_python_code(extracted) -> None:
    # Guards the test below against an extraction that silently finds nothing (a wrong babel.cfg path).
    sources = {place.split(":")[0] for places in extracted.values() for place in places}
    assert "templates/base.html" in sources
    assert "web/accounts/validation.py" in sources
    assert ("Email or password is wrong.", None) in extracted
    assert ("Hello, %(name)s", None) in extracted


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_every_message_is_translated_and_nothing_is_stale(extracted, locale: str) -> None:
    catalog = read_catalog(i18n.catalog_path(locale), locale)
    in_catalog = keys(catalog)

    missing = {key: extracted[key] for key in set(extracted) - in_catalog}
    untranslated = sorted(message.id for message in catalog if message.id and not message.string)
    fuzzy = sorted(message.id for message in catalog if message.id and message.fuzzy)
    stale = sorted(key[0] for key in in_catalog - set(extracted))
    obsolete = sorted(catalog.obsolete)

    assert not missing, f"{locale}: messages missing from the catalog (where they are marked): {missing}; {FIX}"
    assert not untranslated, f"{locale}: messages without a translation: {untranslated}; {FIX}"
    assert not fuzzy, f"{locale}: fuzzy (guessed) translations to check and unflag: {fuzzy}"
    assert not stale, f"{locale}: messages no code marks any more: {stale}; {FIX}"
    assert not obsolete, f"{locale}: obsolete (#~) entries to delete: {obsolete}"


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_translations_keep_placeholders_and_markup(locale: str) -> None:
    catalog = read_catalog(i18n.catalog_path(locale), locale)
    # Babel's own checks: the same %(name)s placeholders on both sides of python-format messages.
    problems = [(message.id, [str(error) for error in errors]) for message, errors in catalog.check()]
    assert problems == []
    for message in catalog:
        if message.id:
            # A plural message has a tuple of English forms and one translation per plural form of the
            # language (one in Indonesian and Japanese): each must keep the markup and placeholders.
            source = message.id if isinstance(message.id, str) else message.id[-1]
            translations = [message.string] if isinstance(message.string, str) else list(message.string)
            placeholders = sorted(re.findall(r"%\(\w+\)[sd]", source))
            for translation in translations:
                assert sorted(HTML_TAG.findall(translation)) == sorted(HTML_TAG.findall(source)), message.id
                assert sorted(re.findall(r"%\(\w+\)[sd]", translation)) == placeholders, message.id


def test_the_template_catalog_lists_every_message(extracted) -> None:
    """messages.pot is what a translator starts from: it must be current too."""
    assert keys(read_catalog(POT_PATH)) == set(extracted), f"messages.pot is out of date; {FIX}"


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_catalogs_compile_and_the_compiled_catalog_translates(locale: str, tmp_path: Path) -> None:
    catalog = read_catalog(i18n.catalog_path(locale), locale)
    mo_path = tmp_path / "messages.mo"
    with mo_path.open("wb") as mo_file:
        write_mo(mo_file, catalog)
    with mo_path.open("rb") as mo_file:
        compiled = Translations(mo_file)
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string
        else:
            singular, plural = message.id[0], message.id[1]
            for count, form in enumerate(message.string, start=1):
                assert compiled.ngettext(singular, plural, count) == form


def test_the_app_loads_the_catalogs_it_compiles_in_memory() -> None:
    assert i18n.translations("id").gettext("Log in") == "Masuk"
    assert i18n.translations("ja").gettext("Log in") == "ログイン"
    # English is the source language: no catalog, every message as written.
    assert i18n.translations("en").gettext("Log in") == "Log in"


def test_a_message_from_python_is_english_as_a_string_and_translated_with_its_parameters() -> None:
    message = N_("Use at most %(count)d characters.", count=80)
    assert message == "Use at most 80 characters."
    assert i18n.translate(message, "id") == "Gunakan paling banyak 80 karakter."
    assert i18n.translate(message, "ja") == "80文字以内で入力してください。"
    assert i18n.translate(message, "en") == "Use at most 80 characters."
    # A string no catalog knows (e.g. a message of a part not translated yet) is shown as it is.
    assert i18n.translate("Some text nobody marked.", "ja") == "Some text nobody marked."
    assert i18n.translate(None, "ja") == ""


def one_message_catalog(translation: str) -> Catalog:
    catalog = Catalog(locale="ja")
    catalog.add("Log in", translation)
    return catalog


def test_the_loader_uses_a_compiled_mo_file_only_while_it_is_not_older_than_its_po(tmp_path: Path) -> None:
    po_path = tmp_path / "messages.po"
    mo_path = tmp_path / "messages.mo"
    assert i18n.load_catalog(po_path).gettext("Log in") == "Log in"  # no catalog: the source text

    with po_path.open("wb") as po_file:
        write_po(po_file, one_message_catalog("from the po"))
    assert i18n.load_catalog(po_path).gettext("Log in") == "from the po"  # compiled in memory

    with mo_path.open("wb") as mo_file:
        write_mo(mo_file, one_message_catalog("from the mo"))
    os.utime(po_path, (1_000_000_000, 1_000_000_000))
    assert i18n.load_catalog(po_path).gettext("Log in") == "from the mo"  # `make compile-messages` output

    os.utime(mo_path, (900_000_000, 900_000_000))
    assert i18n.load_catalog(po_path).gettext("Log in") == "from the po"  # the .po was edited since
