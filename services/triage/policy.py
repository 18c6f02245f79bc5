"""The firm's response policy: which priority an incident gets, and how fast each priority must be
acknowledged, contained and resolved.

Firebreak ships the SOP's default (response_policy.yaml, next to this module). A firm replaces it
whole with its own file, named by FIREBREAK_RESPONSE_POLICY: a policy is one decision, so a file
that left cells out would leave nobody sure which priority an incident gets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from yaml.nodes import Node

from firebreak.settings import SettingsError
from services.triage.yaml_lines import YamlFile

# Both run from the most severe down.
IMPACTS = ("extensive", "significant", "moderate", "minor")
URGENCIES = ("critical", "high", "medium", "low")
PRIORITIES = ("P1", "P2", "P3", "P4")
# Targets' fields, in the order they fall due.
STAGES = ("acknowledge", "contain", "resolve")
DEFAULT_POLICY = Path(__file__).with_name("response_policy.yaml")

DURATION = re.compile(r"(\d{1,6})([mhdw])")
# A target further off than this is a typo, and one beyond what datetimes hold would break
# every incident of that priority, not the start.
LONGEST_TARGET = timedelta(weeks=52)
UNITS = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


class PolicyError(SettingsError):
    """A response policy file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Targets:
    """How long after the report a priority's incident must be acknowledged, contained, resolved."""

    acknowledge: timedelta
    contain: timedelta
    resolve: timedelta


@dataclass(frozen=True)
class Classification:
    """A reported incident's priority, the impact and urgency it was decided on, and why."""

    impact: str
    urgency: str
    priority: str
    rationale: str


@dataclass(frozen=True)
class ResponsePolicy:
    matrix: Mapping[str, Mapping[str, str]]  # impact -> urgency -> priority
    targets: Mapping[str, Targets]  # priority -> targets

    def priority(self, impact: str, urgency: str) -> str:
        """KeyError for an impact or urgency outside the taxonomy (intake accepts none)."""
        return self.matrix[impact][urgency]

    def classify(self, impact: str, urgency: str) -> Classification:
        """The priority of a report. An impact or urgency outside the taxonomy (a producer of
        another version, a replayed event) counts as the most severe: the incident is still
        triaged, too urgently rather than too late, and the rationale tells a human why."""
        unknown = []
        if impact not in IMPACTS:
            unknown.append(f"impact {_shown(impact)} is unknown, so taken as {IMPACTS[0]}")
            impact = IMPACTS[0]
        if urgency not in URGENCIES:
            unknown.append(f"urgency {_shown(urgency)} is unknown, so taken as {URGENCIES[0]}")
            urgency = URGENCIES[0]
        priority = self.priority(impact, urgency)
        decided = f"impact {impact}, urgency {urgency}: {priority} by the firm's matrix"
        return Classification(impact, urgency, priority, "; ".join([*unknown, decided]))


def _shown(value: str) -> str:
    """A value from the bus, quoted and cut short: it may be long, or hold control characters
    (PostgreSQL refuses a NUL in text)."""
    return repr(value[:40]) + ("…" if len(value) > 40 else "")


def load_response_policy(path: Path | None) -> ResponsePolicy:
    """The policy in the file at `path`, or the shipped default; PolicyError if it is unusable."""
    source = YamlFile(path or DEFAULT_POLICY, PolicyError)
    sections = source.mapping(source.root(), "", required=("matrix", "targets"))
    return ResponsePolicy(
        matrix=_matrix(source, sections["matrix"]), targets=_targets(source, sections["targets"])
    )


def _matrix(source: YamlFile, node: Node) -> Mapping[str, Mapping[str, str]]:
    rows = source.mapping(node, "matrix", required=IMPACTS)
    matrix = {}
    for impact in IMPACTS:
        cells = source.mapping(rows[impact], f"matrix.{impact}", required=URGENCIES)
        matrix[impact] = MappingProxyType(
            {
                urgency: source.choice(cells[urgency], f"matrix.{impact}.{urgency}", PRIORITIES)
                for urgency in URGENCIES
            }
        )
    return MappingProxyType(matrix)


def _targets(source: YamlFile, node: Node) -> Mapping[str, Targets]:
    priorities = source.mapping(node, "targets", required=PRIORITIES)
    targets = {}
    for priority in PRIORITIES:
        what = f"targets.{priority}"
        stages = source.mapping(priorities[priority], what, required=STAGES)
        durations = [_duration(source, stages[stage], f"{what}.{stage}") for stage in STAGES]
        # A stage due before the one it follows is almost surely a typo (4m meant as 4h).
        for index in range(1, len(STAGES)):
            if durations[index] < durations[index - 1]:
                stage, previous = STAGES[index], STAGES[index - 1]
                source.fail(stages[stage], f"{what}.{stage} must not be sooner than {previous}")
        targets[priority] = Targets(*durations)
    return MappingProxyType(targets)


def _duration(source: YamlFile, node: Node, what: str) -> timedelta:
    text = source.text(node, what)
    match = DURATION.fullmatch(text)
    if match is None or int(match[1]) == 0:
        source.fail(node, f"{what} must be a duration such as 15m, 4h, 3d or 2w, not {text!r}")
    duration = int(match[1]) * UNITS[match[2]]
    if duration > LONGEST_TARGET:
        source.fail(node, f"{what} must be at most 52w, not {text!r}")
    return duration
