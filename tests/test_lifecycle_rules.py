"""The lifecycle's table, checked state by state against the SOP's path, without processes."""

from __future__ import annotations

import pytest

from services.triage.commands import BUILDERS
from services.triage.lifecycle import (
    COMMANDS,
    PUBLIC_COMMANDS,
    STATES,
    Situation,
    allowed_commands,
    refusal,
)

# Written out independently of the code: which state each command moves an incident to, from
# which states; "stays" for the commands that leave the state as it is.
EXPECTED = {
    "acknowledge": ({"triaged"}, "acknowledged"),
    "contain": ({"acknowledged"}, "contained"),
    "resolve": ({"contained"}, "resolved"),
    "close": ({"resolved"}, "closed"),
    "reopen": ({"resolved", "closed"}, "acknowledged"),
    "decline": ({"reported", "triaged", "acknowledged"}, "declined"),
    "merge": ({"reported", "triaged", "acknowledged"}, "merged"),
    "reclassify": ({"reported", "triaged", "acknowledged", "contained", "resolved"}, "stays"),
    "assign_role": ({"reported", "triaged", "acknowledged", "contained", "resolved"}, "stays"),
    "add_responder": ({"reported", "triaged", "acknowledged", "contained", "resolved"}, "stays"),
    "remove_responder": (
        {"reported", "triaged", "acknowledged", "contained", "resolved"},
        "stays",
    ),
}


def calm(status: str) -> Situation:
    """A P3 with a commander and nothing open: only the state decides."""
    return Situation(status=status, priority="P3", has_commander=True)


@pytest.mark.parametrize("status", STATES)
@pytest.mark.parametrize("command", list(EXPECTED))
def test_every_state_by_every_command(status: str, command: str) -> None:
    allowed_in, leads_to = EXPECTED[command]
    reason = refusal(command, calm(status))
    if status in allowed_in:
        assert reason is None
        assert (COMMANDS[command].leads_to or "stays") == leads_to
    else:
        assert reason == f"not allowed while the incident is {status}"


def test_the_table_has_no_command_the_test_does_not_know() -> None:
    assert set(COMMANDS) == set(EXPECTED)
    assert set(PUBLIC_COMMANDS) == set(COMMANDS)


@pytest.mark.parametrize("priority", ["P1", "P2"])
@pytest.mark.parametrize(
    ("command", "status"), [("contain", "acknowledged"), ("resolve", "contained")]
)
def test_a_paging_incident_needs_a_commander_to_contain_or_resolve(
    priority: str, command: str, status: str
) -> None:
    without = Situation(status=status, priority=priority, has_commander=False)
    assert refusal(command, without) == f"a {priority} incident needs an incident commander first"
    assert refusal(command, Situation(status=status, priority="P3", has_commander=False)) is None


def test_open_required_containment_tasks_hold_back_containment_and_are_named() -> None:
    situation = Situation(
        status="acknowledged",
        priority="P3",
        has_commander=True,
        open_required_containment_tasks=["Isolate the host", "Revoke keys"],
    )
    assert refusal("contain", situation) == (
        "required containment tasks are still open: Isolate the host; Revoke keys"
    )
    assert "contain" not in allowed_commands(situation)
    assert "decline" in allowed_commands(situation)


def test_no_responder_to_remove_is_said() -> None:
    nobody = Situation(status="triaged", priority="P3", has_commander=True, has_responders=False)
    assert refusal("remove_responder", nobody) == "the incident has no responders"


def test_every_command_has_a_builder() -> None:
    assert set(COMMANDS) == set(BUILDERS)
