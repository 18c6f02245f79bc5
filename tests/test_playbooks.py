"""Playbooks: the shipped default for every incident type, a firm's overrides, and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.triage.playbooks import (
    INCIDENT_TYPES,
    PHASES,
    PlaybookError,
    PlaybookTask,
    load_playbooks,
)

# A firm's file whose line numbers the bad cases below refer to.
OVERRIDE = """\
accident:
  - title: Call site security
    phase: containment
    owner_role: responder
    required: true
    description: They hold the first-aid kit and the keys.
  - title: Write it up
    phase: investigation
    owner_role: scribe
    required: false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "playbooks.yaml"
    path.write_text(text)
    return path


def test_every_incident_type_has_a_default_playbook() -> None:
    assert list(load_playbooks(None)) == list(INCIDENT_TYPES)


@pytest.mark.parametrize("incident_type", INCIDENT_TYPES)
def test_each_default_playbook_starts_with_required_containment(incident_type: str) -> None:
    playbook = load_playbooks(None)[incident_type]
    assert 4 <= len(playbook) <= 8
    assert {task.phase for task in playbook} == set(PHASES)
    assert any(task.required and task.phase == "containment" for task in playbook)
    # Tasks are listed in the order they are worked: containment, investigation, recovery.
    phases = [PHASES.index(task.phase) for task in playbook]
    assert phases == sorted(phases)


def test_preserving_evidence_is_a_required_containment_duty_in_a_breach() -> None:
    breach = load_playbooks(None)["security_breach"]
    preserve = next(task for task in breach if "evidence" in task.title.lower())
    assert (preserve.phase, preserve.required) == ("containment", True)


def test_a_firms_file_replaces_the_types_it_names_and_keeps_the_rest(tmp_path: Path) -> None:
    defaults = load_playbooks(None)
    playbooks = load_playbooks(write(tmp_path, OVERRIDE))
    assert playbooks["accident"] == (
        PlaybookTask(
            title="Call site security",
            description="They hold the first-aid kit and the keys.",
            required=True,
            phase="containment",
            owner_role="responder",
        ),
        PlaybookTask(
            title="Write it up",
            description="",
            required=False,
            phase="investigation",
            owner_role="scribe",
        ),
    )
    assert list(playbooks) == list(INCIDENT_TYPES)
    for incident_type in INCIDENT_TYPES:
        if incident_type != "accident":
            assert playbooks[incident_type] == defaults[incident_type]


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        pytest.param(
            "accident:", "acident:", "1: unknown key acident: expected one of", id="unknown-type"
        ),
        pytest.param(
            "    required: false\n",
            "    required: false\n    due: 4h\n",
            "11: unknown key accident[2].due: expected one of title, required, phase",
            id="unknown-field",
        ),
        pytest.param(
            "phase: investigation",
            "phase: eradication",
            "8: accident[2].phase must be one of containment, investigation, recovery, "
            "not 'eradication'",
            id="bad-phase",
        ),
        pytest.param(
            "owner_role: scribe",
            "owner_role: janitor",
            "9: accident[2].owner_role must be one of incident_commander, communications_lead, "
            "scribe, responder, not 'janitor'",
            id="bad-role",
        ),
        pytest.param(
            "title: Write it up", "title:", "7: accident[2].title must not be empty", id="no-title"
        ),
        pytest.param(
            "title: Write it up",
            "title: '   '",
            "7: accident[2].title must not be empty",
            id="blank-title",
        ),
        pytest.param(
            "title: Write it up",
            f"title: {'x' * 201}",
            "7: accident[2].title must be at most 200 characters, not 201",
            id="long-title",
        ),
        pytest.param(
            "title: Write it up",
            "title: Call site security",
            "7: accident[2].title 'Call site security' is already a task",
            id="repeated-title",
        ),
        pytest.param(
            "    owner_role: scribe\n",
            "",
            "7: accident[2] is missing owner_role",
            id="missing-field",
        ),
        pytest.param(
            "required: true",
            "required: maybe",
            "5: accident[1].required must be true or false",
            id="bad-required",
        ),
        pytest.param(
            "  - title: Call site security",
            "  - title: [Call site security]",
            "2: accident[1].title must be a single value",
            id="list-for-title",
        ),
        pytest.param(
            "    description: They hold",
            "   description: They hold",
            "6: not valid YAML",
            id="yaml-syntax",
        ),
    ],
)
def test_a_bad_playbook_names_the_file_and_line(
    tmp_path: Path, old: str, new: str, complaint: str
) -> None:
    assert OVERRIDE.count(old) == 1
    path = write(tmp_path, OVERRIDE.replace(old, new))
    with pytest.raises(PlaybookError) as raised:
        load_playbooks(path)
    assert str(raised.value).startswith(f"{path}:{complaint}")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("accident: []\n", ":1: accident must list at least one task"),
        ("accident:\n", ":1: accident must be a list"),
        ("# nothing yet\n", ":1: the file is empty"),
    ],
)
def test_a_playbook_cannot_be_left_empty(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(PlaybookError, match=complaint):
        load_playbooks(write(tmp_path, text))
