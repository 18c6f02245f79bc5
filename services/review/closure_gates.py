"""Whether an incident may be closed: the firm's closure gates (FIREBREAK_CLOSURE_GATES, the
SOP's defaults all on), each judged from review's own copies, every unmet one named with why.

- resolved (always): the incident is resolved (triage's state, as the gateway read it).
- pir_signed_off: an incident whose highest priority is one of FIREBREAK_CLOSURE_PIR_PRIORITIES
  (P1 and P2) has its post-incident review signed off by a manager, drafted after its latest
  resolution (a reopened and again resolved incident is reviewed again).
- actions_finished: every remediation, recovery and corrective action is done, verified or
  wont_do (which a manager approved). Preventive actions improve what comes after and may run
  on past closure (their owners are still reminded), as may a done corrective action's
  effectiveness check, which falls due weeks later.
- evidence_checked_in: no evidence item is released to someone who has not confirmed receipt.
- deadlines_settled: every regulatory and contractual deadline is met (late or not) or marked
  not applicable with a reason; cancelled ones (a declined or merged incident's) do not count.

The gateway asks this, then has triage close the incident at the version it checked. Between
the two, a few milliseconds, an action could be reopened or a transfer released; and review's
copies of evidence and deadlines follow the bus, so an event from the last moment may not be
in them yet. Both windows are small and closing is a deliberate human act; the timeline keeps
the order of everything that happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.errors import NotFound
from firebreak.events import from_timestamp
from firebreak.keyset_pages import aware_or_none
from services.review import actions, pir, pir_facts
from services.review.action_states import DONE, VERIFIED, WONT_DO

RESOLVED = "resolved"
PIR_SIGNED_OFF = "pir_signed_off"
ACTIONS_FINISHED = "actions_finished"
EVIDENCE_CHECKED_IN = "evidence_checked_in"
DEADLINES_SETTLED = "deadlines_settled"
# The kinds that fix this incident; preventive ones improve what comes after.
GATED_KINDS = frozenset({"remediation", "recovery", "corrective"})
FINISHED = frozenset({DONE, VERIFIED, WONT_DO})
SETTLED = frozenset({"met", "not_applicable", "cancelled"})


@dataclass(frozen=True)
class ClosurePolicy:
    gates: frozenset[str]  # besides `resolved`, which always applies
    pir_priorities: frozenset[str]


@dataclass(frozen=True)
class Unmet:
    gate: str
    reason: str
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Situation:
    """Everything the gates look at, loaded."""

    state: events_pb2.ResponseState
    review: review_pb2.PostIncidentReview | None
    actions: Sequence[Row[Any]]
    evidence: Sequence[Row[Any]]
    deadlines: Sequence[Row[Any]]


def gates_for(policy: ClosurePolicy, state: events_pb2.ResponseState) -> list[str]:
    """The gates that apply to the incident, in the order they are judged."""
    priority = state.highest_priority or state.priority
    applied = [RESOLVED]
    for gate in (PIR_SIGNED_OFF, ACTIONS_FINISHED, EVIDENCE_CHECKED_IN, DEADLINES_SETTLED):
        if gate in policy.gates and (gate != PIR_SIGNED_OFF or priority in policy.pir_priorities):
            applied.append(gate)
    return applied


def _review_gate(situation: Situation) -> Unmet | None:
    state, review = situation.state, situation.review
    priority = state.highest_priority or state.priority
    needs = f"a {priority} incident's post-incident review is signed off by a manager"
    if review is None:
        return Unmet(PIR_SIGNED_OFF, f"{needs}: none is drafted yet")
    if review.status != pir.SIGNED_OFF:
        return Unmet(PIR_SIGNED_OFF, f"{needs}: version {review.version} is not signed off yet")
    drafted_resolution = next(
        (item.at for item in review.milestones if item.name == "resolved" and item.HasField("at")),
        None,
    )
    resolved_at = from_timestamp(state.resolved_at) if state.HasField("resolved_at") else None
    if drafted_resolution is None or from_timestamp(drafted_resolution) != resolved_at:
        return Unmet(
            PIR_SIGNED_OFF,
            f"{needs}: it was drafted before the incident's latest resolution; draft it again "
            "and sign it off",
        )
    return None


def _actions_gate(situation: Situation) -> Unmet | None:
    open_ones = [
        row for row in situation.actions if row.kind in GATED_KINDS and row.status not in FINISHED
    ]
    if not open_ones:
        return None
    listed = "; ".join(f"“{row.title}” ({row.status.replace('_', ' ')})" for row in open_ones)
    return Unmet(
        ACTIONS_FINISHED,
        f"{len(open_ones)} remediation, recovery or corrective action(s) are not done, verified "
        f"or approved as wont_do: {listed}",
        tuple(row.id for row in open_ones),
    )


def _evidence_gate(situation: Situation) -> Unmet | None:
    out = [row for row in situation.evidence if pir_facts.checked_out(row)]
    if not out:
        return None
    listed = "; ".join(
        f"{row.filename} released by {row.holder_name} to {row.pending_receiver_name}"
        for row in out
    )
    return Unmet(
        EVIDENCE_CHECKED_IN,
        f"{len(out)} evidence item(s) are checked out, their receipt not confirmed: {listed}",
        tuple(row.evidence_id for row in out),
    )


def _deadlines_gate(situation: Situation) -> Unmet | None:
    open_ones = [row for row in situation.deadlines if row.status not in SETTLED]
    if not open_ones:
        return None
    listed = "; ".join(
        f"{row.kind} {row.rule} ({row.status}, due {aware_or_none(row.due_at):%Y-%m-%d %H:%M} UTC)"
        for row in open_ones
    )
    return Unmet(
        DEADLINES_SETTLED,
        f"{len(open_ones)} deadline(s) are neither met nor marked not applicable: {listed}",
        tuple(row.deadline_id for row in open_ones),
    )


def unmet_gates(policy: ClosurePolicy, situation: Situation) -> list[Unmet]:
    """Every gate that applies and is not met, in order. Pure."""
    unmet: list[Unmet] = []
    for gate in gates_for(policy, situation.state):
        if gate == RESOLVED:
            status = situation.state.status
            if status != RESOLVED:
                unmet.append(Unmet(RESOLVED, f"the incident is {status}, not resolved"))
            continue
        judged = {
            PIR_SIGNED_OFF: _review_gate,
            ACTIONS_FINISHED: _actions_gate,
            EVIDENCE_CHECKED_IN: _evidence_gate,
            DEADLINES_SETTLED: _deadlines_gate,
        }[gate](situation)
        if judged is not None:
            unmet.append(judged)
    return unmet


async def check_closure(
    connection: AsyncConnection,
    *,
    policy: ClosurePolicy,
    client_id: str,
    incident_id: str,
    state: events_pb2.ResponseState,
) -> tuple[list[str], list[Unmet]]:
    """The gates that apply to the incident, and those it does not meet."""
    try:
        review: review_pb2.PostIncidentReview | None = await pir.get_review(
            connection, client_id=client_id, incident_id=incident_id
        )
    except NotFound:
        review = None
    situation = Situation(
        state=state,
        review=review,
        actions=await actions.list_actions(
            connection, client_id=client_id, incident_id=incident_id
        ),
        evidence=await pir_facts.evidence_of(connection, incident_id),
        deadlines=await pir_facts.deadlines_of(connection, incident_id),
    )
    return gates_for(policy, state), unmet_gates(policy, situation)
