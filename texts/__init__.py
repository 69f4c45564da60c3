"""The one message catalogue: every text an owner, operator or guest reads, in English and Dutch.

Messages are written in English in the code, marked with `_()` (or `ngettext()` for plurals)
on a `Texts` object, and translated in `texts/locale/<lang>/LC_MESSAGES/tapsense.po` (gettext,
kept with Babel: `scripts/messages.sh` extracts new messages and merges them into the
catalogues). English needs no catalogue: its texts are the message ids. The `.po` files are
read as they are (no compiled `.mo` to keep in step), once per process.

`Texts` also formats numbers, times and durations for the reader's locale, times in the
venue's time zone. It must never do I/O beyond reading the catalogues.
"""

from __future__ import annotations

import gettext
import io
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DOMAIN = "tapsense"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "nl")  # English first: the fallback
DEFAULT_LANGUAGE = "en"
# The packages whose texts people read; `scripts/messages.sh` extracts from these.
SOURCES = ("alerts", "reports", "coupons")
KEYWORDS = {"_": None, "ngettext": (1, 2)}


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _translations(language: str) -> gettext.NullTranslations:
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    mo = io.BytesIO()
    write_mo(mo, catalog)  # leaves fuzzy entries out: an unchecked translation is not shown
    mo.seek(0)
    return gettext.GNUTranslations(mo)


class Texts:
    """Messages and formats for one reader: a language and the venue's time zone."""

    def __init__(self, language: str, timezone: str = "UTC") -> None:
        if language not in LANGUAGES:
            raise ValueError(f"no texts in {language!r}; there are {', '.join(LANGUAGES)}")
        self.language = language
        self.locale = Locale.parse(language)
        self.zone = ZoneInfo(timezone)
        self._gettext = _translations(language)

    def _(self, message: str, **values: object) -> str:
        """The message in the reader's language, with `%(name)s` placeholders filled."""
        text = self._gettext.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self._gettext.ngettext(singular, plural, n)
        return text % {"n": n, **values}

    def number(self, value: float, digits: int = 1) -> str:
        """`7.5` in English, `7,5` in Dutch; thousands grouped."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(self.zone)

    def time(self, ms: int) -> str:
        """A time of day in the venue's zone: `17:05`."""
        return format_time(self.local(ms), format="HH:mm", locale=self.locale)

    def datetime(self, ms: int) -> str:
        """A date and time in the venue's zone: `Mar 6, 2026 17:05` / `6 mrt 2026 17:05`."""
        local = self.local(ms)
        day = format_date(local, format="medium", locale=self.locale)
        return f"{day} {format_time(local, format='HH:mm', locale=self.locale)}"

    def duration(self, seconds: float) -> str:
        """`25 minutes` / `25 minuten`; rounded to the largest unit that fits."""
        return format_timedelta(int(seconds), threshold=1.5, format="long", locale=self.locale)
