"""Playbooks: for each incident type, the tasks a response works through, phase by phase.

Firebreak ships a playbook for every type (playbooks.yaml, next to this module); a firm adapts
them with its own file, named by FIREBREAK_PLAYBOOKS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, get_args

from yaml.nodes import Node

from firebreak.settings import SettingsError
from services.triage.yaml_lines import YamlFile

INCIDENT_TYPES = (
    "security_breach",
    "data_loss",
    "service_outage",
    "service_degradation",
    "accident",
    "near_miss",
    "unsafe_condition",
    "compliance",
    "other",
)
Phase = Literal["containment", "investigation", "recovery"]
OwnerRole = Literal["incident_commander", "communications_lead", "scribe", "responder"]
PHASES: tuple[Phase, ...] = get_args(Phase)
OWNER_ROLES: tuple[OwnerRole, ...] = get_args(OwnerRole)
MAX_TITLE_CHARS = 200
DEFAULT_PLAYBOOKS = Path(__file__).with_name("playbooks.yaml")


class PlaybookError(SettingsError):
    """A playbooks file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class PlaybookTask:
    title: str
    description: str
    required: bool  # every response must do it; an optional task is advice to weigh
    phase: Phase
    owner_role: OwnerRole


def load_playbooks(path: Path | None) -> Mapping[str, tuple[PlaybookTask, ...]]:
    """Each incident type's tasks, in order; PlaybookError if a file is unusable.

    A firm's file REPLACES the whole playbook of each type it names, and every other type keeps
    the shipped default: merging task by task would leave nobody sure which default tasks still
    apply, while naming every type would make a firm copy playbooks it is happy with."""
    playbooks = _read(YamlFile(DEFAULT_PLAYBOOKS, PlaybookError), required=INCIDENT_TYPES)
    if path is not None:
        playbooks |= _read(YamlFile(path, PlaybookError), required=())
    return MappingProxyType({kind: playbooks[kind] for kind in INCIDENT_TYPES})


def _read(source: YamlFile, *, required: tuple[str, ...]) -> dict[str, tuple[PlaybookTask, ...]]:
    optional = [kind for kind in INCIDENT_TYPES if kind not in required]
    kinds = source.mapping(source.root(), "", required=required, optional=optional)
    return {kind: _playbook(source, node, kind) for kind, node in kinds.items()}


def _playbook(source: YamlFile, node: Node, kind: str) -> tuple[PlaybookTask, ...]:
    items = source.sequence(node, kind)
    if not items:
        source.fail(node, f"{kind} must list at least one task")
    tasks: list[PlaybookTask] = []
    for number, item in enumerate(items, start=1):
        task = _task(source, item, f"{kind}[{number}]")
        # Two tasks with one title could not be told apart on the checklist.
        if any(task.title == earlier.title for earlier in tasks):
            source.fail(item, f"{kind}[{number}].title {task.title!r} is already a task")
        tasks.append(task)
    return tuple(tasks)


def _task(source: YamlFile, node: Node, what: str) -> PlaybookTask:
    fields = source.mapping(
        node,
        what,
        required=("title", "required", "phase", "owner_role"),
        optional=("description",),
    )
    title = source.text(fields["title"], f"{what}.title").strip()
    if not title:
        source.fail(fields["title"], f"{what}.title must not be empty")
    if len(title) > MAX_TITLE_CHARS:
        source.fail(
            fields["title"],
            f"{what}.title must be at most {MAX_TITLE_CHARS} characters, not {len(title)}",
        )
    description = ""
    if "description" in fields:
        description = source.text(fields["description"], f"{what}.description").strip()
    return PlaybookTask(
        title=title,
        description=description,
        required=source.boolean(fields["required"], f"{what}.required"),
        phase=source.choice(fields["phase"], f"{what}.phase", PHASES),
        owner_role=source.choice(fields["owner_role"], f"{what}.owner_role", OWNER_ROLES),
    )
