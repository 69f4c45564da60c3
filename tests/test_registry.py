"""The registry's schema and its migrations, and what ingest reads from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from ingest.quality import Check, Level, QualityCore
from ingest.registry_view import RegistryView
from ingest.settings import QualitySettings
from registry import access, changes
from registry.access import Role
from registry.db import (
    RegistryError,
    alembic_config,
    current_revision,
    engine_for,
    generation,
    head_revision,
    migrate,
    open_registry,
    transaction,
)
from registry.directory import TapConfig, load_directory, refusal, tap_events_since
from registry.models import Beer, Device, KegChange, LineCleaning, MqttCredential, Tap, Venue
from registry.schema import Base
from simulators.fleet import simple_scenario
from simulators.provision import provision


def test_an_empty_database_upgrades_to_exactly_the_models(registry_url: str) -> None:
    migrate(registry_url)
    engine = engine_for(registry_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert current_revision(engine) == head_revision()


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_a_database_at_an_earlier_revision_upgrades_and_keeps_its_rows(
    registry_url: str, revision: str
) -> None:
    migrate(registry_url, revision)
    engine = engine_for(registry_url)
    with pytest.raises(RegistryError, match=rf"revision {revision}.*tapsense registry migrate"):
        open_registry(registry_url)
    with engine.begin() as db:  # rows as revision 0001 wrote them, without the ORM of today
        db.execute(text("INSERT INTO organisations (id, name, created_ms) VALUES (1, 'Old', 0)"))
        db.execute(text("INSERT INTO users (id, organisation_id, email, name, role, created_ms) "
                        "VALUES (1, 1, 'o@x.test', 'O', 'operator', 0)"))  # fmt: skip
        db.execute(text("INSERT INTO venues (id, organisation_id, name, latitude, longitude, "
                        "region, timezone, created_ms) VALUES ('bar', 1, 'Bar', 52, 5, 'U', "
                        "'Europe/Amsterdam', 0)"))  # fmt: skip
        db.execute(text("INSERT INTO taps (venue_id, id, keg_l, created_ms) "
                        "VALUES ('bar', 'tap-01', 30, 0)"))  # fmt: skip
    with transaction(engine) as session:
        # An API key made before the upgrade: the hash format did not change.
        session.execute(text("INSERT INTO api_keys (id, secret_sha256, user_id, name, "
                             "created_ms) VALUES ('0123456789ab', :h, 1, 'old', 0)"),
                        {"h": __import__("hashlib").sha256(b"s" * 43).hexdigest()})  # fmt: skip

    migrate(registry_url)
    engine = open_registry(registry_url)
    with transaction(engine) as db:
        who = access.authenticate(db, "tsk_0123456789ab_" + "s" * 43)
        assert who is not None and who.role is Role.OPERATOR
        venue = db.get(Venue, "bar")
        assert venue is not None and db.get(Tap, ("bar", "tap-01")) is not None
        changes.provision_device(db, venue, "edge-1")  # the new revision's tables work
    assert load_directory(engine)["bar"].devices == frozenset({"edge-1"})


def test_migrations_go_down_and_up_again(registry_url: str) -> None:
    migrate(registry_url)
    command.downgrade(alembic_config(registry_url), "base")
    assert current_revision(engine_for(registry_url)) is None
    migrate(registry_url)
    assert current_revision(engine_for(registry_url)) == head_revision()


@pytest.fixture
def registry(registry_url: str):  # type: ignore[no-untyped-def]
    migrate(registry_url)
    engine = engine_for(registry_url)
    with transaction(engine) as db:
        org = changes.create_organisation(db, "Brewery")
        dubbel = Beer(organisation_id=org.id, name="Dubbel", style="dubbel", serving_min_c=6,
                      serving_max_c=10, created_ms=0)  # fmt: skip
        db.add(dubbel)
        db.add(Venue(id="bar", organisation_id=org.id, name="Bar", latitude=52, longitude=5,
                     region="U", timezone="Europe/Amsterdam", line_cleaning_days=7,
                     hours={"fri": "16:00-02:00"}, created_ms=0))  # fmt: skip
        db.flush()
        db.add_all([
            Tap(venue_id="bar", id="dubbel", beer_id=dubbel.id, keg_l=20, created_ms=0),
            Tap(venue_id="bar", id="cold", beer_id=dubbel.id, keg_l=50, warm_max_c=5,
                created_ms=0),
            Tap(venue_id="bar", id="plain", keg_l=50, created_ms=0),
            Device(venue_id="bar", id="edge-1", name="e", created_ms=0),
            Device(venue_id="bar", id="old", name="o", created_ms=0, revoked_ms=1),
        ])  # fmt: skip
    return engine


def test_the_directory_holds_thresholds_from_beer_tap_and_venue(registry) -> None:  # type: ignore[no-untyped-def]
    directory = load_directory(registry)
    bar = directory["bar"]
    assert (bar.timezone, bar.hours, bar.line_cleaning_days) == (
        "Europe/Amsterdam", {"fri": "16:00-02:00"}, 7,
    )  # fmt: skip
    assert bar.taps["dubbel"] == TapConfig(keg_l=20, warm_max_c=10, foam_c=None, serving_min_c=6)
    assert bar.taps["cold"].warm_max_c == 5  # the tap's own limit beats the beer's
    assert bar.taps["plain"] == TapConfig(keg_l=50)
    assert refusal(directory, "bar", "edge-1") is None
    assert refusal(directory, "bar", "old") == "device 'old' of venue 'bar' was revoked"
    assert refusal(directory, "pub", "edge-1") == "venue 'pub' is not registered"


def test_keg_changes_and_cleanings_reach_the_quality_core_once(registry) -> None:  # type: ignore[no-untyped-def]
    quality = QualityCore(QualitySettings(line_cleaning_days=1), load_directory(registry))
    with transaction(registry) as db:
        db.add(LineCleaning(venue_id="bar", tap_id="dubbel", at_ms=1_750_000_000_000))
        db.add(KegChange(venue_id="bar", tap_id="dubbel", keg_l=30, at_ms=1_750_000_000_001))
    events = tap_events_since(registry, quality.applied_keg, quality.applied_cleaning)
    assert [e.kind for e in events] == ["cleaning", "keg"]
    assert quality.apply(events) == []  # nothing was overdue
    assert (quality.applied_keg, quality.applied_cleaning) == (1, 1)
    assert tap_events_since(registry, quality.applied_keg, quality.applied_cleaning) == []
    i = quality.tap_index("bar", "dubbel")
    assert quality.state["cleaned_at"][i] == 1_750_000_000_000
    assert quality.state["keg_used_ml"][i] == 0


def test_a_cleaning_clears_an_overdue_warning(registry) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    quality = QualityCore(QualitySettings(), load_directory(registry))
    i = quality.tap_index("bar", "plain")
    week = 7 * 86_400_000
    t0 = 1_750_000_000_000
    ts = np.array([t0, t0 + week + 60_000], np.int64)
    events = quality.temperatures(np.array([i, i], np.int32), ts, np.array([4.0, 4.0]))
    assert [(e.check, e.level) for e in events] == [(Check.LINE_CLEANING, Level.WARNING)]
    with transaction(registry) as db:
        db.add(LineCleaning(venue_id="bar", tap_id="plain", at_ms=t0 + week + 120_000))
    cleared = quality.apply(tap_events_since(registry, 0, 0))
    assert [(e.tap, e.check, e.level) for e in cleared] == [
        ("plain", Check.LINE_CLEANING, Level.OK)
    ]


def test_ingest_sees_a_venue_registered_just_after_it_refused_it(registry) -> None:  # type: ignore[no-untyped-def]
    """A retained status from an unknown venue, then the venue is registered, then its first
    reading: the reading is taken, however soon it comes."""
    view = RegistryView(registry, refresh_s=3600)
    assert view.refusal("pub", "edge-1") == "venue 'pub' is not registered"
    with transaction(registry) as db:
        org_id = db.scalar(select(Venue.organisation_id).where(Venue.id == "bar"))
        db.add(Venue(id="pub", organisation_id=org_id, name="Pub", latitude=52, longitude=5,
                     region="U", timezone="UTC", created_ms=0))  # fmt: skip
        db.flush()
        db.add(Device(venue_id="pub", id="edge-1", name="e", created_ms=0))
    assert view.refusal("pub", "edge-1") is None
    assert not view.refresh()  # nothing changed since


def test_every_change_ingest_reads_moves_the_generation(registry) -> None:  # type: ignore[no-untyped-def]
    before = generation(registry)
    with transaction(registry) as db:
        tap = db.get(Tap, ("bar", "plain"))
        assert tap is not None
        tap.warm_max_c = 4.0
    assert generation(registry) == before + 1
    with transaction(registry) as db:
        changes.create_organisation(db, "Unrelated")  # not something ingest reads
    assert generation(registry) == before + 1


def test_a_cleaning_recorded_late_for_an_earlier_time_changes_nothing(registry) -> None:  # type: ignore[no-untyped-def]
    quality = QualityCore(QualitySettings(), load_directory(registry))
    t0 = 1_750_000_000_000
    with transaction(registry) as db:
        db.add(LineCleaning(venue_id="bar", tap_id="plain", at_ms=t0 + 1000))
        db.flush()
        db.add(LineCleaning(venue_id="bar", tap_id="plain", at_ms=t0))  # recorded second
    quality.apply(tap_events_since(registry, 0, 0))
    assert quality.state["cleaned_at"][quality.tap_index("bar", "plain")] == t0 + 1000
    assert quality.applied_cleaning == 2
    assert tap_events_since(registry, quality.applied_keg, quality.applied_cleaning) == []


def test_ingest_keeps_its_directory_when_the_registry_stops_answering(registry) -> None:  # type: ignore[no-untyped-def]
    view = RegistryView(registry, refresh_s=3600)
    with registry.begin() as db:
        db.execute(text("DROP TABLE registry_state"))  # as good as a database that is gone
    assert not view.refresh()
    assert refusal(view.directory, "bar", "edge-1") is None
    assert view.refusal("pub", "edge-1") == "venue 'pub' is not registered"
    assert view.tap_events_since(0, 0) == []


def test_registering_a_fleet_again_updates_it_and_rotates_the_logins(registry_url: str) -> None:
    migrate(registry_url)
    engine = engine_for(registry_url)
    fleet = simple_scenario(3, 2)
    first = provision(engine, fleet)
    second = provision(engine, simple_scenario(3, 4))
    assert set(first) == set(second) == {"venue-001", "venue-002", "venue-003"}
    assert all(first[v][0] == second[v][0] and first[v][1] != second[v][1] for v in first)
    directory = load_directory(engine)
    assert sorted(directory["venue-002"].taps) == ["tap-01", "tap-02", "tap-03", "tap-04"]
    with transaction(engine) as db:
        hashes = db.scalars(select(MqttCredential.password_hash)).all()
    assert len(hashes) == 3 and all(h.startswith("$7$") for h in hashes)
    with transaction(engine) as db:
        other = changes.create_organisation(db, "Someone else")
        db.add(Venue(id="venue-009", organisation_id=other.id, name="x", latitude=0,
                     longitude=0, region="r", timezone="UTC", created_ms=0))  # fmt: skip
    with pytest.raises(ValueError, match=r"venue-009.*another organisation"):
        provision(engine, simple_scenario(9, 1))


def test_the_operator_cli_refuses_what_the_api_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stack.cli import main

    monkeypatch.setenv("TAPSENSE_HOME", str(tmp_path))
    assert main(["registry", "migrate"]) == 0
    assert main(["registry", "org", "One", "--operator", "ops@one.test"]) == 0
    assert main(["registry", "org", "Two"]) == 0
    venue = ["registry", "venue", "--org", "Two", "--id", "bar", "--name", "Bar", "--lat", "52",
             "--lon", "5", "--region", "U"]  # fmt: skip
    assert main([*venue, "--owner", "1"]) == 2  # user 1 is One's operator, not Two's owner
    assert "not an owner in this organisation" in capsys.readouterr().err
    assert main(venue) == 0
    assert main(venue) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["registry", "tap", "--venue", "bar", "--id", "tap-01", "--beer", "99"]) == 2
    assert "not one of this organisation's beers" in capsys.readouterr().err
    assert main(["registry", "tap", "--venue", "bar", "--id", "tap-01"]) == 0
    assert main(["registry", "beer", "--org", "Two", "--name", "Dubbel", "--serving-min-c", "8",
                 "--serving-max-c", "6"]) == 2  # fmt: skip
    assert "must be below serving_max_c" in capsys.readouterr().err
    assert (
        main(["registry", "beer", "--org", "Two", "--name", "Dubbel", "--serving-max-c", "10"]) == 0
    )
    assert main(["registry", "keg", "--venue", "bar", "--tap", "tap-01", "--keg-l", "0"]) == 2
    assert "keg_l" in capsys.readouterr().err
    assert main(["registry", "keg", "--venue", "bar", "--tap", "tap-09", "--keg-l", "30"]) == 2
    assert "no tap 'tap-09'" in capsys.readouterr().err


def test_a_keg_change_and_a_cleaning_from_the_cli_reach_ingests_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stack.cli import main

    monkeypatch.setenv("TAPSENSE_HOME", str(tmp_path))
    assert main(["registry", "migrate"]) == 0
    assert main(["registry", "org", "One"]) == 0
    assert (
        main(["registry", "beer", "--org", "One", "--name", "Dubbel", "--serving-max-c", "10"]) == 0
    )
    assert main(["registry", "venue", "--org", "One", "--id", "bar", "--name", "Bar", "--lat",
                 "52", "--lon", "5", "--region", "U"]) == 0  # fmt: skip
    assert main(["registry", "tap", "--venue", "bar", "--id", "tap-01", "--keg-l", "50"]) == 0
    engine = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    view = RegistryView(engine, refresh_s=0.001)
    assert main(["registry", "keg", "--venue", "bar", "--tap", "tap-01", "--keg-l", "30",
                 "--beer", "1", "--at-ms", "1700000000000"]) == 0  # fmt: skip
    assert main(["registry", "cleaning", "--venue", "bar", "--tap", "tap-01", "--at-ms",
                 "1700000001000"]) == 0  # fmt: skip
    assert view.refresh()
    tap = view.directory["bar"].taps["tap-01"]
    assert (tap.keg_l, tap.warm_max_c) == (30.0, 10.0)
    assert [(e.kind, e.tap, e.keg_l, e.at_ms) for e in view.tap_events_since(0, 0)] == [
        ("keg", "tap-01", 30.0, 1700000000000),
        ("cleaning", "tap-01", 0.0, 1700000001000),
    ]
    engine.dispose()
