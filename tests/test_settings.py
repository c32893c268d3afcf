from __future__ import annotations

import re
from pathlib import Path

import pytest

from sodate.settings import Environment, Settings, SettingsError, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"
STRONG_KEY = "Zq3v9LmP0xR7tY2wK8nB4cH6jD1fG5sA-strong-key"


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.env is Environment.DEVELOPMENT
    assert settings.timezone == "Asia/Tokyo"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.as_posix()}/sodate.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SODATE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("SODATE_PORT", "9001")
    monkeypatch.setenv("SODATE_PLUGINS", "a.b, c.d")
    settings = load_settings()
    assert settings.timezone == "Europe/Berlin"
    assert settings.port == 9001
    assert settings.plugins == ("a.b", "c.d")


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SODATE_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("SODATE_PORT", "not-a-port")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SODATE_TIMEZONE" in str(raised.value)
    assert "SODATE_PORT" in str(raised.value)


def test_development_generates_and_keeps_a_secret_key(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolved_secret_key()
    second = Settings(data_dir=tmp_path).resolved_secret_key()
    assert first == second
    assert len(first) >= 32
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("key", [None, "changeme", "short", "a" * 64])
def test_production_refuses_a_missing_or_weak_secret_key(tmp_path: Path, key: str | None) -> None:
    settings = Settings(env="production", data_dir=tmp_path, secret_key=key)
    with pytest.raises(SettingsError, match="SODATE_SECRET_KEY"):
        settings.resolved_secret_key()
    assert not (tmp_path / "secret_key").exists()


def test_production_accepts_a_strong_secret_key(tmp_path: Path) -> None:
    settings = Settings(env="production", data_dir=tmp_path, secret_key=STRONG_KEY)
    assert settings.resolved_secret_key() == STRONG_KEY


def test_readme_documents_every_setting_and_only_real_ones() -> None:
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(SODATE_[A-Z0-9_]+)`", text, flags=re.MULTILINE))
    fields = {f"SODATE_{name.upper()}" for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from the README table"
    assert documented - fields == set(), "README documents settings that do not exist"
