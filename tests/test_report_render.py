"""The report as people read it: valid HTML with its charts inline, and an A4 PDF whose pages
turn into images (Poppler's `pdftoppm`, as a person would look at them) and whose text holds
the figures, in English and in Dutch, numbers and months in the reader's locale."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import html5lib
import pytest
from PIL import Image
from pypdf import PdfReader

from reports import render
from reports.model import Report
from tests import reportdata

REPORT = reportdata.report(warm_tap="tap-02")
MONTH = {"en": "March 2026", "nl": "maart 2026"}


def litres(report: Report, language: str) -> str:
    number = f"{report.litres:,.1f}"  # 1,234.5
    if language == "nl":
        number = number.replace(",", "_").replace(".", ",").replace("_", ".")  # 1.234,5
    return f"{number} l"


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_html_is_valid_and_carries_its_charts_and_figures(language: str) -> None:
    page = render.to_html(REPORT, language)
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)  # raises if not
    assert page.count("<svg") == 2  # volume by beer, and the heat map
    assert f'<html lang="{language}">' in page
    assert MONTH[language] in page
    assert litres(REPORT, language) in page
    for beer in ("pils", "ipa", "bock"):
        assert beer in page
    assert "€" in page  # pils and ipa have a price per litre
    tip = "have its cooler and line serviced" if language == "en" else "laat de koeler"
    assert tip in page


def test_a_name_with_markup_is_shown_not_run() -> None:
    hostile = REPORT.model_copy(update={"venue_name": "<script>alert(1)</script> & Co"})
    page = render.to_html(hostile, "en")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_pdf_holds_the_figures_and_its_pages_render_to_images(
    language: str, tmp_path: Path
) -> None:
    pdf = render.to_pdf(REPORT, language)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert MONTH[language].lower() in text.lower()
    assert "Café Test" in text
    assert litres(REPORT, language) in text
    assert "tap-02" in text
    (tmp_path / "report.pdf").write_bytes(pdf)
    assert shutil.which("pdftoppm"), "Poppler's pdftoppm is installed by scripts/setup.sh --test"
    subprocess.run(["pdftoppm", "-r", "50", "-png", "report.pdf", "page"], cwd=tmp_path,
                   check=True)  # fmt: skip
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(reader.pages) >= 2
    for png in pages:
        with Image.open(png) as image:
            assert image.width < image.height  # A4 upright
            low, high = image.convert("L").getextrema()  # one band: two numbers
            assert low < 100 < high  # type: ignore[operator]  # dark text on a light page


def test_json_is_the_model_itself() -> None:
    assert Report.model_validate_json(render.as_format(REPORT, "json", "en")) == REPORT
