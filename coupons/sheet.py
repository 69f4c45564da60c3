"""The printable coupon sheet: A4 pages of cards, each with the campaign's message in the
reader's language, the beer, the code (printed and as a QR code) and until when it is valid.
Rendered from HTML by WeasyPrint; the QR codes are inline SVG made by segno."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from coupons import codes
from texts import Texts

_TEMPLATES = Path(__file__).parent / "templates"
CARDS_PER_PAGE = 8


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sheet:
    venue_name: str
    beer: str
    festival: str
    message: str  # in the reader's language
    valid_until_ms: int
    codes: list[str]  # as stored
    timezone: str = "Europe/Amsterdam"


def qr_svg(code: str) -> Markup:
    """The code as a QR code (error correction M: a card may get a beer stain)."""
    svg = segno.make(codes.shown(code), error="m", micro=False).svg_inline(scale=3, border=2)
    return Markup(svg)  # segno's own SVG of a code of letters, digits and dashes: safe


def to_html(sheet: Sheet, language: str) -> str:
    t = Texts(language, sheet.timezone)
    cards = [{"shown": codes.shown(c), "qr": qr_svg(c)} for c in sheet.codes]
    pages = [cards[i : i + CARDS_PER_PAGE] for i in range(0, len(cards), CARDS_PER_PAGE)]
    return _environment().get_template("sheet.html").render(
        language=language,
        title=t._("Tasting coupons: %(beer)s", beer=sheet.beer),
        venue=sheet.venue_name,
        beer=sheet.beer,
        festival=t._("For %(festival)s", festival=sheet.festival),
        message=sheet.message,
        valid=t._("Valid until %(when)s, once, at %(venue)s",
                  when=t.datetime(sheet.valid_until_ms), venue=sheet.venue_name),
        code_label=t._("Code"),
        pages=pages or [[]],
        empty=t._("No codes to print."),
    )  # fmt: skip


def to_pdf(sheet: Sheet, language: str) -> bytes:
    from weasyprint import HTML  # loads Pango: only where a PDF is made

    pdf: bytes = HTML(string=to_html(sheet, language), base_url=str(_TEMPLATES)).write_pdf()
    return pdf
