"""A service refuses to start on a bad settings file, and says which line is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.triage.playbooks import DEFAULT_PLAYBOOKS
from services.triage.policy import DEFAULT_POLICY

FIREBREAK = Path(sys.executable).parent / "firebreak"


def _bad_copy(source: Path, target: Path, old: str, new: str) -> int:
    """Copies `source` with `old` replaced once by `new`; returns the changed line's number."""
    text = source.read_text()
    assert old in text, old
    target.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


@pytest.mark.parametrize(
    ("variable", "source", "old", "new", "complaint"),
    [
        ("FIREBREAK_RESPONSE_POLICY", DEFAULT_POLICY, "P1", "P9", "must be one of P1, P2, P3, P4"),
        ("FIREBREAK_PLAYBOOKS", DEFAULT_PLAYBOOKS, "phase: containment", "phase: soon", "phase"),
    ],
    ids=["policy", "playbooks"],
)
def test_triage_stops_at_start_naming_the_line(
    tmp_path: Path, variable: str, source: Path, old: str, new: str, complaint: str
) -> None:
    bad = tmp_path / source.name
    line = _bad_copy(source, bad, old, new)
    # Nothing else is running: the file must be refused before any connection is tried.
    environment = os.environ | {
        variable: str(bad),
        "FIREBREAK_VAR_DIR": str(tmp_path / "var"),
        "FIREBREAK_NATS_URL": "nats://127.0.0.1:1",
    }
    result = subprocess.run(
        [str(FIREBREAK), "serve", "triage"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"{bad}:{line}:" in result.stderr
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("service", ["gateway", "intake", "triage", "notify", "evidence", "review"])
def test_a_serving_process_does_not_load_alembic(service: str) -> None:
    """Alembic costs a process about 11 MB: services migrate in a child process instead."""
    code = f"import sys, firebreak.cli, services.{service}.main; sys.exit('alembic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
