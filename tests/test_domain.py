"""Pure domain rules, tested without any process."""

from __future__ import annotations

from pathlib import Path

import pytest

from firebreak.settings import Settings, SettingsError


def test_settings_refuse_a_weak_admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBREAK_ADMIN_KEY", "short")
    with pytest.raises(SettingsError, match="FIREBREAK_ADMIN_KEY must be at least 24"):
        Settings.from_environment()


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("FIREBREAK_GATEWAY_PORT", "eighty", "must be a number"),
        ("FIREBREAK_GATEWAY_PORT", "70000", "must be at most 65535"),
        ("FIREBREAK_STREAM_REPLICAS", "0", "must be at least 1"),
        ("FIREBREAK_GRPC_HEALTH_PORT", "0", "must be at least 1"),
        ("FIREBREAK_OUTBOX_POLL_SECONDS", "0", "must be at least 0.001"),
        ("FIREBREAK_EVIDENCE_MAX_BYTES", "100", "must be at least 1024"),
        ("FIREBREAK_EVIDENCE_MASTER_KEY", "c2hvcnQ=", "must be base64 of 32 random bytes"),
        ("FIREBREAK_EVIDENCE_SIGNING_KEY", "not base64!", "must be base64 of 32 random bytes"),
    ],
)
def test_settings_name_the_variable_they_cannot_use(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"{variable} {complaint}"):
        Settings.from_environment()


def test_settings_parse_each_variable_to_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBREAK_VAR_DIR", "/srv/firebreak")
    monkeypatch.setenv("FIREBREAK_GATEWAY_PORT", "9090")
    monkeypatch.setenv("FIREBREAK_SHUTDOWN_GRACE_SECONDS", "2.5")
    monkeypatch.setenv("FIREBREAK_NATS_URL", "nats://nats:4222")
    monkeypatch.setenv("FIREBREAK_GRPC_HEALTH_PORT", "50052")  # optional: int | None
    settings = Settings.from_environment()
    assert isinstance(settings.grpc_health_port, int) and settings.grpc_health_port == 50052
    assert settings.var_dir == Path("/srv/firebreak")
    assert settings.gateway_port == 9090
    assert settings.shutdown_grace_seconds == 2.5
    assert settings.bus_url == "nats://nats:4222"
    assert Settings.from_environment({}).bus_url == "nats://127.0.0.1:14222"


def test_settings_default_to_local_sqlite_and_take_database_urls_per_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREBREAK_TRIAGE_DATABASE_URL", "postgresql+asyncpg://db/triage")
    settings = Settings.from_environment()
    assert settings.database_url("triage") == "postgresql+asyncpg://db/triage"
    assert settings.database_url("intake").startswith("sqlite+aiosqlite:///")
    assert settings.database_url("intake").endswith("var/intake.db")


def test_plain_database_urls_get_the_async_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBREAK_INTAKE_DATABASE_URL", "postgresql://u@db:5432/intake")
    monkeypatch.setenv("FIREBREAK_REVIEW_DATABASE_URL", "postgres://u@db/review")
    settings = Settings.from_environment()
    assert settings.database_url("intake") == "postgresql+asyncpg://u@db:5432/intake"
    assert settings.database_url("review") == "postgresql+asyncpg://u@db/review"
