"""Pure domain rules, tested without any process."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from firebreak.settings import Settings
from services.triage.service import PRIORITY_MATRIX, URGENCIES, prioritise

# The SOP's default matrix, written out independently of the code's table.
EXPECTED = """
impact      critical high medium low
extensive   P1       P1   P2     P3
significant P1       P2   P3     P3
moderate    P2       P3   P3     P4
minor       P3       P4   P4     P4
"""


def test_priority_matrix_matches_the_sop() -> None:
    header, *rows = [line.split() for line in EXPECTED.strip().splitlines()]
    urgencies = header[1:]
    assert set(PRIORITY_MATRIX) == {row[0] for row in rows}
    assert set(URGENCIES) == set(urgencies)
    for impact, *priorities in rows:
        for urgency, priority in zip(urgencies, priorities, strict=True):
            assert prioritise(impact, urgency) == priority, (impact, urgency)


def test_settings_refuse_a_weak_admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBREAK_ADMIN_KEY", "short")
    with pytest.raises(ValidationError, match="at least 24"):
        Settings()


def test_settings_default_to_local_sqlite_and_take_database_urls_per_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREBREAK_TRIAGE_DATABASE_URL", "postgresql+asyncpg://db/triage")
    settings = Settings()
    assert settings.database_url("triage") == "postgresql+asyncpg://db/triage"
    assert settings.database_url("intake").startswith("sqlite+aiosqlite:///")
    assert settings.database_url("intake").endswith("var/intake.db")


def test_plain_database_urls_get_the_async_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBREAK_INTAKE_DATABASE_URL", "postgresql://u@db:5432/intake")
    monkeypatch.setenv("FIREBREAK_REVIEW_DATABASE_URL", "postgres://u@db/review")
    settings = Settings()
    assert settings.database_url("intake") == "postgresql+asyncpg://u@db:5432/intake"
    assert settings.database_url("review") == "postgresql+asyncpg://u@db/review"
