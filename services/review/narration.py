"""One line per event, for the timeline an SRE or a court reads, and the words a client reads.

The client's line leaves out what is internal: task notes, containment and resolution
summaries, reasons, and who on the firm's side did what. Events a client has no business
seeing (roles, responders, tasks, notifications, evidence the firm collected and its custody)
have no client line at all.
"""

from __future__ import annotations

from collections.abc import Callable

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.events import (
    ACTION_ADDED,
    ACTION_EFFECTIVENESS_CHECK_DUE,
    ACTION_EFFECTIVENESS_CHECKED,
    ACTION_OVERDUE,
    ACTION_UPDATED,
    ANALYSIS_UPDATED,
    DEADLINE_MARKED_NOT_APPLICABLE,
    DEADLINE_MET,
    DEADLINE_MISSED,
    DEADLINE_REMINDER_SENT,
    DEADLINE_STARTED,
    ESCALATION_STEP_REACHED,
    ESCALATION_STOPPED,
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_CLOSED,
    INCIDENT_CONTAINED,
    INCIDENT_DECLINED,
    INCIDENT_FLAGGED,
    INCIDENT_MERGED,
    INCIDENT_RECLASSIFIED,
    INCIDENT_REOPENED,
    INCIDENT_REPORTED,
    INCIDENT_RESOLVED,
    INCIDENT_RESPONDER_ADDED,
    INCIDENT_RESPONDER_REMOVED,
    INCIDENT_ROLE_ASSIGNED,
    INCIDENT_TRIAGED,
    NOTE_ADDED,
    NOTIFICATION_SENT,
    PAGE_DELIVERED,
    PAGE_FAILED,
    PIR_DRAFTED,
    PIR_EDITED,
    PIR_SIGNED,
    STATUS_UPDATE_OVERDUE,
    STATUS_UPDATE_POSTED,
    TASK_ADDED,
    TASK_UPDATED,
)
from services.review import (
    closure_narration,
    deadline_narration,
    evidence_narration,
    follow_up_narration,
    update_narration,
)

Lines = tuple[str, str | None]  # (internal line, client line or None)


def _reported(event: EventEnvelope) -> Lines:
    report = event.incident_reported
    line = (
        f"{report.reference} reported by {report.reporter.name}: {report.title} "
        f"({report.type}, impact {report.impact}, urgency {report.urgency})"
    )
    return line, line


def _triaged(event: EventEnvelope) -> Lines:
    triaged = event.incident_triaged
    tasks = f"; {triaged.tasks_added} tasks from the playbook" if triaged.tasks_added else ""
    return (
        f"triaged as {triaged.priority}: {triaged.rationale}{tasks}",
        f"triaged as {triaged.priority}",
    )


def _acknowledged(event: EventEnvelope) -> Lines:
    commander = event.incident_acknowledged.state.incident_commander
    taken = f"; {commander.name} is incident commander" if commander.id else ""
    return f"acknowledged by {event.actor.name}{taken}", "acknowledged by the response team"


def _contained(event: EventEnvelope) -> Lines:
    return f"contained: {event.incident_contained.summary}", "contained"


def _resolved(event: EventEnvelope) -> Lines:
    return f"resolved: {event.incident_resolved.summary}", "resolved"


def _reopened(event: EventEnvelope) -> Lines:
    return f"reopened: {event.incident_reopened.reason}", "reopened for further work"


def _declined(event: EventEnvelope) -> Lines:
    return (
        f"declined as not an incident: {event.incident_declined.reason}",
        "declined: assessed as not an incident",
    )


def _merged(event: EventEnvelope) -> Lines:
    into = event.incident_merged.into
    return f"merged as a duplicate into {into}", f"merged as a duplicate into {into}"


def _closed(event: EventEnvelope) -> Lines:
    closed = event.incident_closed
    code = closed.closure_code.replace("_", " ") or "closed"
    return f"closed ({code}) by {event.actor.name}: {closed.summary}", f"closed ({code})"


def _reclassified(event: EventEnvelope) -> Lines:
    change = event.incident_reclassified
    parts = [
        f"{name} {old} → {new}"
        for name, old, new in (
            ("type", change.old_type, change.new_type),
            ("impact", change.old_impact, change.new_impact),
            ("urgency", change.old_urgency, change.new_urgency),
            ("priority", change.old_priority, change.new_priority),
        )
        if old != new
    ]
    tasks = f"; {change.tasks_added} tasks added" if change.tasks_added else ""
    client = (
        f"priority changed from {change.old_priority} to {change.new_priority}"
        if change.old_priority != change.new_priority
        else "classification updated"
    )
    return f"reclassified ({', '.join(parts)}): {change.reason}{tasks}", client


def _role_assigned(event: EventEnvelope) -> Lines:
    assigned = event.incident_role_assigned
    role = assigned.role.replace("_", " ")
    handover = f", taking over from {assigned.previous.name}" if assigned.previous.id else ""
    briefing = f"; briefing: {assigned.briefing}" if assigned.briefing else ""
    return f"{assigned.person.name} is {role}{handover}{briefing}", None


def _responder_added(event: EventEnvelope) -> Lines:
    return f"{event.incident_responder_added.person.name} joined as responder", None


def _responder_removed(event: EventEnvelope) -> Lines:
    return f"{event.incident_responder_removed.person.name} left the responders", None


def _task_added(event: EventEnvelope) -> Lines:
    task = event.task_added.task
    required = "required " if task.required else ""
    return f"{required}{task.phase} task added: {task.title}", None


def _task_updated(event: EventEnvelope) -> Lines:
    updated = event.task_updated
    task = updated.task
    moved = (
        f"{updated.old_status} → {task.status}" if updated.old_status != task.status else "updated"
    )
    return f"task {task.title}: {moved}", None


def _notification_sent(event: EventEnvelope) -> Lines:
    sent = event.notification_sent
    return f"notified {sent.audience} via {sent.channel}: {sent.subject}", None


def _escalation_step_reached(event: EventEnvelope) -> Lines:
    step = event.escalation_step_reached
    who = ", ".join(person.name or person.id for person in step.targets) or "nobody on call"
    if step.fallback:
        return f"escalation ran out: paging the firm's fallback ({who})", None
    repeat = f", repeat {step.round}" if step.round else ""
    resumed = "acknowledgement lapsed without progress; " if step.resumed else ""
    missing = ", ".join(person.name or person.id for person in step.not_paged)
    skipped = f"; not paged (deactivated or unknown): {missing}" if missing else ""
    return f"{resumed}escalation step {step.step + 1}{repeat}: paging {who}{skipped}", None


def _page_delivered(event: EventEnvelope) -> Lines:
    page = event.page_delivered
    return f"paged {page.person.name or page.person.id} by {page.channel}", None


def _page_failed(event: EventEnvelope) -> Lines:
    page = event.page_failed
    final = "gave up" if page.final else "will retry"
    return (
        f"page to {page.person.name or page.person.id} by {page.channel} failed "
        f"(attempt {page.attempts}, {final}): {page.error}",
        None,
    )


def _escalation_stopped(event: EventEnvelope) -> Lines:
    return f"escalation stopped: {event.escalation_stopped.reason}", None


NARRATORS: dict[str, Callable[[EventEnvelope], Lines]] = {
    INCIDENT_REPORTED: _reported,
    INCIDENT_TRIAGED: _triaged,
    INCIDENT_ACKNOWLEDGED: _acknowledged,
    INCIDENT_CONTAINED: _contained,
    INCIDENT_RESOLVED: _resolved,
    INCIDENT_REOPENED: _reopened,
    INCIDENT_DECLINED: _declined,
    INCIDENT_MERGED: _merged,
    INCIDENT_CLOSED: _closed,
    INCIDENT_RECLASSIFIED: _reclassified,
    INCIDENT_ROLE_ASSIGNED: _role_assigned,
    INCIDENT_RESPONDER_ADDED: _responder_added,
    INCIDENT_RESPONDER_REMOVED: _responder_removed,
    TASK_ADDED: _task_added,
    TASK_UPDATED: _task_updated,
    NOTIFICATION_SENT: _notification_sent,
    ESCALATION_STEP_REACHED: _escalation_step_reached,
    PAGE_DELIVERED: _page_delivered,
    PAGE_FAILED: _page_failed,
    ESCALATION_STOPPED: _escalation_stopped,
    NOTE_ADDED: follow_up_narration.note_added,
    ANALYSIS_UPDATED: follow_up_narration.analysis_updated,
    ACTION_ADDED: follow_up_narration.action_added,
    ACTION_UPDATED: follow_up_narration.action_updated,
    ACTION_OVERDUE: follow_up_narration.action_overdue,
    ACTION_EFFECTIVENESS_CHECK_DUE: follow_up_narration.action_effectiveness_check_due,
    ACTION_EFFECTIVENESS_CHECKED: follow_up_narration.action_effectiveness_checked,
    STATUS_UPDATE_POSTED: update_narration.status_update_posted,
    STATUS_UPDATE_OVERDUE: update_narration.status_update_overdue,
    INCIDENT_FLAGGED: deadline_narration.incident_flagged,
    DEADLINE_STARTED: deadline_narration.deadline_started,
    DEADLINE_REMINDER_SENT: deadline_narration.deadline_reminder_sent,
    DEADLINE_MET: deadline_narration.deadline_met,
    DEADLINE_MISSED: deadline_narration.deadline_missed,
    **evidence_narration.NARRATORS,
    DEADLINE_MARKED_NOT_APPLICABLE: closure_narration.deadline_marked_not_applicable,
    PIR_DRAFTED: closure_narration.pir_drafted,
    PIR_EDITED: closure_narration.pir_edited,
    PIR_SIGNED: closure_narration.pir_signed,
}


def narrate(event: EventEnvelope) -> Lines:
    return NARRATORS[event.type](event)
