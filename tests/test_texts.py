"""The message catalogue: every text people read has its Dutch translation, with the same
placeholders, and numbers and times read as a Dutch or English reader expects."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from babel.messages.checkers import python_format
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import texts
from registry.inputs import Language
from texts import Texts

ROOT = Path(__file__).resolve().parent.parent


def _in_code() -> set[str | tuple[str, ...]]:
    found: set[str | tuple[str, ...]] = set()
    for source in texts.SOURCES:
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / source, method_map=[("**.py", "python")], keywords=texts.KEYWORDS
        ):
            found.add(message if isinstance(message, str) else tuple(message))
    return found


@pytest.mark.parametrize("language", [x for x in texts.LANGUAGES if x != texts.DEFAULT_LANGUAGE])
def test_every_message_in_the_code_is_translated(language: str) -> None:
    with texts.catalogue_path(language).open("rb") as po:
        catalogue = read_po(po, locale=language)
    translated = {}
    for m in catalogue:
        if m.id and not m.fuzzy:
            key = m.id if isinstance(m.id, str) else tuple(m.id)
            strings = [m.string] if isinstance(m.string, str) else list(m.string or ())
            if all(strings):
                translated[key] = m
    missing = sorted(str(k) for k in _in_code() - translated.keys())
    assert not missing, f"no {language} translation (run scripts/messages.sh): {missing}"
    for message in translated.values():
        python_format(catalogue, message)  # raises when the placeholders differ


def test_languages_are_those_a_user_can_choose() -> None:
    assert set(typing.get_args(Language)) == set(texts.LANGUAGES)


def test_dutch_reads_dutch() -> None:
    nl, en = Texts("nl", "Europe/Amsterdam"), Texts("en", "Europe/Amsterdam")
    assert nl._("Warm beer") == "Bier te warm"
    assert en._("Warm beer") == "Warm beer"
    assert nl.number(1234.5) == "1.234,5"
    assert en.number(1234.5) == "1,234.5"
    summer = 1_782_900_000_000  # 2026-07-01T10:00:00Z: 12:00 in Amsterdam (CEST)
    assert nl.time(summer) == "12:00"
    assert nl.datetime(summer) == "1 jul 2026 12:00"
    assert nl.duration(25 * 60) == "25 minuten"
    assert en.duration(25 * 60) == "25 minutes"


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="no texts in 'fr'"):
        Texts("fr")
