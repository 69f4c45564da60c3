"""The alert e-mail as an owner sees it: rendered by a real browser (Debian's Chromium, driven
by Playwright), on a phone's width and a desktop's, in Dutch: every tap listed, nothing wider
than the screen, the remedy shown. The screenshots are left in the test's folder to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from alerts import messages
from alerts.lifecycle import Change
from alerts.messages import Item
from alerts.outbox import render_email
from texts import Texts
from timeseries.events import Check, Level

CHROMIUM = "/usr/bin/chromium"  # Debian's (scripts/setup.sh --test); Playwright's own download
# is not reachable from the build machines.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
T0 = 1_772_816_400_000  # 2026-03-06 18:00 in Amsterdam


def cooler_email(language: str) -> str:
    t = Texts(language, "Europe/Amsterdam")
    items = [Item(i, Change.OPENED, Check.WARM_BEER, Level.CRITICAL, f"tap-0{i}",
                  "Utrechts Stadsbier Blond", 6.0, T0, 8.7 + i / 10, T0 - 900_000)
             for i in range(1, 7)]  # fmt: skip
    items.append(Item(7, Change.OPENED, Check.COOLER_FAILURE, Level.CRITICAL, "", None, None, T0,
                      1.0, 6))  # fmt: skip
    return render_email(t, "Café De Dom", [messages.line(t, i) for i in items]).html


@pytest.mark.parametrize("width", [375, 800])
def test_the_dutch_cooler_email_reads_on_a_phone_and_a_desktop(width: int, tmp_path: Path) -> None:
    html = cooler_email("nl")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.set_content(html)
        page.screenshot(path=str(tmp_path / f"cooler-nl-{width}.png"), full_page=True)
        overflow = page.evaluate(
            "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
        )
        text = page.inner_text("body")
        browser.close()
    assert overflow <= 0, f"{overflow} px wider than a {width} px screen"
    for tap in range(1, 7):
        assert f"Utrechts Stadsbier Blond op tap-0{tap}" in text
    assert "7 meldingen" in text and "Wat te doen:" in text
    # The cause first, and each remedy once: not six times the same advice.
    assert text.index("de koeling lijkt te falen") < text.index("op tap-01")
    assert text.count("Wat te doen:") == 2
