"""`tapsense coupons` as an operator uses it, on a SQLite registry and the real InfluxDB: a
festival and a campaign, the preview, the launch, a sheet, redemptions and the results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from registry import changes
from registry.db import engine_for, migrate, transaction
from registry.inputs import BeerIn, VenueIn
from tests.conftest import Influx
from timeseries.influx import ensure_database
from timeseries.settings import InfluxSettings


def test_an_operator_runs_a_campaign_from_the_shell(tmp_path: Path, influx: Influx) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    migrate(url)
    engine = engine_for(url)
    with transaction(engine) as db:
        org = changes.create_organisation(db, "Brouwerij")
        beer_id = changes.create_beer(db, org.id, BeerIn(name="Herfstbok")).id
        for venue, lat, lon in (("cafe-dom", 52.0907, 5.1214), ("cafe-dam", 52.3731, 4.8926)):
            changes.create_venue(db, org.id, VenueIn(id=venue, name=venue, latitude=lat,
                                                     longitude=lon, region="NL"))  # fmt: skip
    engine.dispose()
    database = f"cli_{uuid.uuid4().hex[:8]}"
    ensure_database(InfluxSettings(url=influx.url, database=database))
    env = {**os.environ, "TAPSENSE_HOME": str(tmp_path), "TAPSENSE_REGISTRY__URL": url,
           "TAPSENSE_INFLUX__URL": influx.url, "TAPSENSE_INFLUX__DATABASE": database}  # fmt: skip

    def coupons(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stack.cli", "coupons", *args], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    made = coupons("festival", "--org", "Brouwerij", "--name", "Bokbierfestival", "--lat",
                   "52.0907", "--lon", "5.1214", "--from", "2026-10-09T12:00+02:00", "--to",
                   "2026-10-11T23:00+02:00", "--beer", str(beer_id))  # fmt: skip
    assert made.returncode == 0, made.stderr
    naive = coupons("festival", "--org", "Brouwerij", "--name", "x", "--lat", "52", "--lon",
                    "5", "--from", "2026-10-09T12:00", "--to", "2026-10-10T12:00",
                    "--beer", str(beer_id))  # fmt: skip
    assert naive.returncode == 2 and "give the offset too" in naive.stderr
    campaign = coupons("campaign", "--org", "Brouwerij", "--festival", "1", "--beer",
                       str(beer_id), "--radius-km", "20", "--codes", "4", "--from",
                       "2026-01-01T00:00+01:00", "--until", "2099-01-01T00:00+01:00",
                       "--message-en", "Taste it", "--message-nl", "Proef het")  # fmt: skip
    assert campaign.returncode == 0 and "campaign 1 (draft)" in campaign.stdout
    preview = coupons("preview", "1")
    assert re.search(r"^cafe-dom +0\.00 km +4 codes", preview.stdout, re.MULTILINE)
    assert "cafe-dam" not in preview.stdout and "1 venues, 4 codes" in preview.stdout
    assert "4 codes issued" in coupons("launch", "1").stdout
    again = coupons("launch", "1")
    assert again.returncode == 2 and "launched already" in again.stderr

    sheet = coupons("sheet", "cafe-dom", "1", "-o", str(tmp_path / "sheet.pdf"))
    assert sheet.returncode == 0 and "4 coupons of cafe-dom" in sheet.stdout
    text = subprocess.run(["pdftotext", str(tmp_path / "sheet.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    [code, *_] = re.findall(r"[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{4}", text)
    assert "Proef het" in text

    done = coupons("redeem", "cafe-dom", code.lower().replace("-", " "))
    assert done.returncode == 0 and f"redeemed {code} at cafe-dom" in done.stdout
    used = coupons("redeem", "cafe-dom", code)
    assert used.returncode == 2 and "used: coupon" in used.stderr
    typo = coupons("redeem", "cafe-dom", code[:-1] + ("0" if code[-1] != "0" else "1"))
    assert typo.returncode == 2 and "mistyped" in typo.stderr

    found = coupons("results", "1")
    assert found.returncode == 0, found.stderr
    assert re.search(r"^cafe-dom +issued +4 +redeemed +1$", found.stdout, re.MULTILINE)
    assert "uplift: not enough comparable venues" in found.stdout
