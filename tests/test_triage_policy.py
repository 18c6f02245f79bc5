"""The response policy file: the shipped default, a firm's own, and every way one can be wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from firebreak.settings import Settings
from services.triage.playbooks import DEFAULT_PLAYBOOKS, PlaybookError, load_playbooks
from services.triage.policy import (
    DEFAULT_POLICY,
    IMPACTS,
    URGENCIES,
    PolicyError,
    Targets,
    load_response_policy,
)

# The SOP's default matrix (PRIORITY_MATRIX in triage before the policy file existed), written
# out independently of the shipped file.
SOP_MATRIX = """
impact      critical high medium low
extensive   P1       P1   P2     P3
significant P1       P2   P3     P3
moderate    P2       P3   P3     P4
minor       P3       P4   P4     P4
"""

# A valid policy whose line numbers the bad cases below refer to.
GOOD = """\
matrix:
  extensive:
    critical: P1
    high: P1
    medium: P2
    low: P3
  significant: {critical: P1, high: P2, medium: P3, low: P3}
  moderate: {critical: P2, high: P3, medium: P3, low: P4}
  minor: {critical: P3, high: P4, medium: P4, low: P4}
targets:
  P1: {acknowledge: 10m, contain: 2h, resolve: 1d}
  P2: {acknowledge: 30m, contain: 8h, resolve: 3d}
  P3: {acknowledge: 4h, contain: 3d, resolve: 2w}
  P4: {acknowledge: 1d, contain: 10d, resolve: 30d}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_the_default_policy_is_the_sops_matrix() -> None:
    header, *rows = [line.split() for line in SOP_MATRIX.strip().splitlines()]
    policy = load_response_policy(None)
    assert list(policy.matrix) == list(IMPACTS) == [row[0] for row in rows]
    assert list(URGENCIES) == header[1:]
    for impact, *priorities in rows:
        assert list(policy.matrix[impact]) == list(URGENCIES)
        for urgency, priority in zip(URGENCIES, priorities, strict=True):
            assert policy.priority(impact, urgency) == priority, (impact, urgency)


def test_the_default_targets_follow_the_sop() -> None:
    targets = load_response_policy(None).targets
    assert targets["P1"] == Targets(timedelta(minutes=15), timedelta(hours=4), timedelta(hours=24))
    assert targets["P2"] == Targets(timedelta(minutes=30), timedelta(hours=8), timedelta(days=3))
    assert targets["P3"] == Targets(timedelta(hours=4), timedelta(days=3), timedelta(days=10))
    assert targets["P4"] == Targets(timedelta(days=1), timedelta(days=10), timedelta(days=30))


def test_a_firms_policy_replaces_the_default(tmp_path: Path) -> None:
    policy = load_response_policy(write(tmp_path, GOOD))
    assert policy.priority("extensive", "critical") == "P1"
    assert policy.targets["P1"].acknowledge == timedelta(minutes=10)
    assert policy.targets["P3"].resolve == timedelta(weeks=2)


def test_the_policy_cannot_be_changed_once_loaded() -> None:
    policy = load_response_policy(None)
    with pytest.raises(TypeError):
        policy.matrix["minor"]["low"] = "P1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        pytest.param(
            "significant: {critical: P1, high: P2,",
            "significant: {critical: P1, high: P9,",
            "7: matrix.significant.high must be one of P1, P2, P3, P4, not 'P9'",
            id="wrong-priority",
        ),
        pytest.param(
            "    medium: P2\n",
            "",
            "3: matrix.extensive is missing medium",
            id="missing-cell",
        ),
        pytest.param(
            "  minor: {critical: P3, high: P4, medium: P4, low: P4}\n",
            "",
            "2: matrix is missing minor",
            id="missing-row",
        ),
        pytest.param(
            "    low: P3\n",
            "    low: P3\n    lwo: P3\n",
            "7: unknown key matrix.extensive.lwo: expected one of critical, high, medium, low",
            id="unknown-urgency",
        ),
        pytest.param(
            "    high: P1\n",
            "    high: P1\n    high: P2\n",
            "5: matrix.extensive.high is given twice",
            id="duplicate-cell",
        ),
        pytest.param(
            "targets:\n",
            "escalation: {}\ntargets:\n",
            "10: unknown key escalation: expected one of matrix, targets",
            id="unknown-section",
        ),
        pytest.param(
            "  P4: {acknowledge: 1d, contain: 10d, resolve: 30d}\n",
            "  P4: {acknowledge: 1d, contain: 10d, resolve: 30d}\n  P5: {}\n",
            "15: unknown key targets.P5",
            id="unknown-priority",
        ),
        pytest.param(
            "P2: {acknowledge: 30m, contain: 8h, resolve: 3d}",
            "P2: {acknowledge: 30m, contain: 8h}",
            "12: targets.P2 is missing resolve",
            id="missing-target",
        ),
        pytest.param(
            "contain: 8h",
            "contain: 8 hours",
            "12: targets.P2.contain must be a duration such as 15m, 4h, 3d or 2w, not '8 hours'",
            id="bad-duration",
        ),
        pytest.param(
            "contain: 8h",
            "contain: 0h",
            "12: targets.P2.contain must be a duration",
            id="zero-duration",
        ),
        pytest.param(
            "resolve: 2w",
            "resolve: 2m",
            "13: targets.P3.resolve must not be sooner than contain",
            id="targets-out-of-order",
        ),
        pytest.param(
            "  moderate: {critical: P2, high: P3,",
            "  moderate: {critical: P2 high: P3,",
            "8: not valid YAML",
            id="yaml-syntax",
        ),
        pytest.param(
            "    low: P3\n",
            "\tlow: P3\n",
            "6: not valid YAML",
            id="yaml-tab",
        ),
        pytest.param(
            "  minor: {critical: P3, high: P4, medium: P4, low: P4}",
            "  minor: [P3, P4, P4, P4]",
            "9: matrix.minor must be a mapping with the keys critical, high, medium, low",
            id="list-for-mapping",
        ),
    ],
)
def test_a_bad_policy_names_the_file_and_line(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    assert GOOD.count(old) == 1
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(PolicyError) as raised:
        load_response_policy(path)
    assert str(raised.value).startswith(f"{path}:{complaint}")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("", ":1: the file is empty"), ("- P1\n", ":1: the file must be a mapping")],
)
def test_a_policy_file_must_hold_a_mapping(tmp_path: Path, text: str, complaint: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError, match=complaint):
        load_response_policy(path)


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"absent\.yaml: cannot read it"):
        load_response_policy(tmp_path / "absent.yaml")


def test_settings_name_the_firms_policy_and_playbook_files() -> None:
    settings = Settings.from_environment(
        {
            "FIREBREAK_RESPONSE_POLICY": "/etc/firebreak/policy.yaml",
            "FIREBREAK_PLAYBOOKS": "playbooks.yaml",
        }
    )
    assert settings.response_policy == Path("/etc/firebreak/policy.yaml")
    assert settings.playbooks == Path("playbooks.yaml")
    assert Settings.from_environment({}).response_policy is None


@pytest.mark.parametrize("duration", ["53w", "600000w", "99999999999999999999d"])
def test_a_target_beyond_a_year_is_refused_at_start(tmp_path: Path, duration: str) -> None:
    text = DEFAULT_POLICY.read_text()
    line = text[: text.index("acknowledge: 15m")].count("\n") + 1
    bad = tmp_path / "policy.yaml"
    bad.write_text(text.replace("acknowledge: 15m", f"acknowledge: {duration}", 1))
    with pytest.raises(PolicyError, match=rf"{bad}:{line}: .*"):
        load_response_policy(bad)


def test_nul_in_a_playbook_text_is_refused_at_start(tmp_path: Path) -> None:
    text = DEFAULT_PLAYBOOKS.read_text()
    title = text[text.index("title: ") + len("title: ") : text.index("\n", text.index("title: "))]
    line = text[: text.index("title: ")].count("\n") + 1
    bad = tmp_path / "playbooks.yaml"
    bad.write_text(text.replace(title, '"Isolate\\0 the host"', 1))
    with pytest.raises(PlaybookError, match=rf"{bad}:{line}: .*NUL"):
        load_playbooks(bad)
