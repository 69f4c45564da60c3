"""Settings come from the environment over a TOML file over defaults, and bad ones are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stack.cli import main
from stack.settings import Settings, environment


def test_environment_overrides_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tapsense.toml"
    config.write_text('[mqtt]\nport = 1999\nhost = "broker.local"\n[influx]\ndatabase = "bar"\n')
    monkeypatch.setenv("TAPSENSE_CONFIG", str(config))
    monkeypatch.setenv("TAPSENSE_MQTT__PORT", "2001")
    settings = Settings()
    assert (settings.mqtt.host, settings.mqtt.port, settings.influx.database) == (
        "broker.local",
        2001,
        "bar",
    )
    assert settings.ingest.receive_maximum == 1000  # untouched defaults stay


def test_every_bad_value_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPSENSE_MQTT__PORT", "99999")
    monkeypatch.setenv("TAPSENSE_INFLUX__URL", "influx:8086")
    monkeypatch.setenv("TAPSENSE_INGEST__BATCH_MAX_MESSAGES", "5000")
    with pytest.raises(ValidationError) as caught:
        Settings()
    where = {".".join(map(str, e["loc"])) for e in caught.value.errors()}
    # The [mqtt] section is the agent's plain dataclass: it names the field in its message.
    assert where == {"mqtt", "influx.url", "ingest"}
    assert "port must be 1..65535, not 99999" in str(caught.value)
    assert "receive_maximum" in str(caught.value)


def test_a_named_config_file_must_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAPSENSE_CONFIG", "/nonexistent/tapsense.toml")
    assert main(["config"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_keys_in_the_config_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tapsense.toml"
    config.write_text("[mqtt]\nprot = 1884\n")
    monkeypatch.setenv("TAPSENSE_CONFIG", str(config))
    with pytest.raises(ValidationError, match="prot"):
        Settings()


def test_config_command_leaves_secrets_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAPSENSE_MQTT__PASSWORD", "hunter2")
    monkeypatch.setenv("TAPSENSE_INFLUX__TOKEN", "s3cret")
    monkeypatch.setenv("TAPSENSE_REGISTRY__URL", "postgresql+psycopg://ts:pa55word@db/tapsense")
    monkeypatch.setenv("TAPSENSE_INFLUX__URL", "https://reader:inf1ux@influx.example:8086")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for secret in ("hunter2", "s3cret", "pa55word", "inf1ux"):
        assert secret not in out
    assert '"port": 18830' in out
    assert "postgresql+psycopg://ts:***@db/tapsense" in out


def test_environment_round_trips_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Settings(home=tmp_path, mqtt={"port": 1999, "tls": True}, influx={"timeout_s": 2.5})
    for name, value in environment(original).items():
        monkeypatch.setenv(name, value)
    assert Settings() == original
