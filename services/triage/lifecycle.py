"""The incident lifecycle as data: states, the commands allowed in each, and their guards.

reported → triaged → acknowledged → contained → resolved → closed; reopen takes a resolved or
closed incident back to acknowledged; decline and merge end an incident before it is worked.
No command skips a step (an incident is contained before it is resolved), and a refused
command always says why, so a console can grey out a button with the reason beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STATES = (
    "reported",
    "triaged",
    "acknowledged",
    "contained",
    "resolved",
    "closed",
    "declined",
    "merged",
)
# Nothing more happens to these but a reopen (closed) or nothing at all (declined, merged).
ENDED = frozenset({"closed", "declined", "merged"})
PAGING_PRIORITIES = frozenset({"P1", "P2"})  # need an incident commander to contain or resolve
WORKING = frozenset(STATES) - ENDED


@dataclass(frozen=True)
class Command:
    name: str
    allowed_in: frozenset[str]
    leads_to: str | None  # None: the state stays (roles, responders, classification)


COMMANDS: Mapping[str, Command] = {
    command.name: command
    for command in (
        Command("acknowledge", frozenset({"triaged"}), "acknowledged"),
        Command("contain", frozenset({"acknowledged"}), "contained"),
        Command("resolve", frozenset({"contained"}), "resolved"),
        Command("close", frozenset({"resolved"}), "closed"),
        Command("reopen", frozenset({"resolved", "closed"}), "acknowledged"),
        Command("decline", frozenset({"reported", "triaged", "acknowledged"}), "declined"),
        Command("merge", frozenset({"reported", "triaged", "acknowledged"}), "merged"),
        Command("reclassify", WORKING, None),
        Command("assign_role", WORKING, None),
        Command("add_responder", WORKING, None),
        Command("remove_responder", WORKING, None),
    )
}
# Commands the HTTP API offers: all of them (close once review's closure gates are met).
PUBLIC_COMMANDS = tuple(COMMANDS)
CLOSURE_CODES = ("resolved", "false_positive", "duplicate", "risk_accepted")


@dataclass(frozen=True)
class Situation:
    """What the guards look at besides the state."""

    status: str
    priority: str
    has_commander: bool
    has_responders: bool = True
    open_required_containment_tasks: Sequence[str] = ()


def refusal(command: str, situation: Situation) -> str | None:
    """Why `command` cannot run now, or None when it can."""
    rule = COMMANDS[command]
    if situation.status not in rule.allowed_in:
        return f"not allowed while the incident is {situation.status}"
    needs_commander = command in ("contain", "resolve")
    if needs_commander and situation.priority in PAGING_PRIORITIES and not situation.has_commander:
        return f"a {situation.priority} incident needs an incident commander first"
    if command == "remove_responder" and not situation.has_responders:
        return "the incident has no responders"
    if command == "contain" and situation.open_required_containment_tasks:
        titles = "; ".join(situation.open_required_containment_tasks)
        return f"required containment tasks are still open: {titles}"
    return None


def allowed_commands(situation: Situation) -> list[str]:
    return [name for name in PUBLIC_COMMANDS if refusal(name, situation) is None]
