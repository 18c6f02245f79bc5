"""One line per event, for the timeline an SRE or a court reads, and the words a client reads;
each in the platform's own words, with what people wrote beside it as named values (lines.py).

The client's line and values leave out what is internal: task notes, containment and
resolution summaries, reasons, and who on the firm's side did what. Events a client has no
business seeing (roles, responders, tasks, notifications, evidence the firm collected and its
custody) have no client line at all.
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
    ALERT_ACKNOWLEDGED,
    ALERT_RESOLVED,
    ALERT_RETRIGGERED,
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
    alert_narration,
    closure_narration,
    deadline_narration,
    evidence_narration,
    follow_up_narration,
    update_narration,
)
from services.review.lines import Lines, each, fields, people


def _reported(event: EventEnvelope) -> Lines:
    report = event.incident_reported
    line = (
        f"{report.reference} reported ({report.type}, impact {report.impact}, "
        f"urgency {report.urgency})"
    )
    said = fields(("reporter", report.reporter.name), ("title", report.title))
    return Lines(line, line, said, said)


def _triaged(event: EventEnvelope) -> Lines:
    triaged = event.incident_triaged
    tasks = f"; {triaged.tasks_added} tasks from the playbook" if triaged.tasks_added else ""
    return Lines(
        f"triaged as {triaged.priority}{tasks}",
        f"triaged as {triaged.priority}",
        fields(("rationale", triaged.rationale)),
    )


def _acknowledged(event: EventEnvelope) -> Lines:
    commander = event.incident_acknowledged.state.incident_commander
    return Lines(
        "acknowledged, with an incident commander" if commander.id else "acknowledged",
        "acknowledged by the response team",
        fields(
            ("by", event.actor.name),
            ("incident_commander", commander.name if commander.id else ""),
        ),
    )


def _contained(event: EventEnvelope) -> Lines:
    return Lines("contained", "contained", fields(("summary", event.incident_contained.summary)))


def _resolved(event: EventEnvelope) -> Lines:
    return Lines("resolved", "resolved", fields(("summary", event.incident_resolved.summary)))


def _reopened(event: EventEnvelope) -> Lines:
    return Lines(
        "reopened", "reopened for further work", fields(("reason", event.incident_reopened.reason))
    )


def _declined(event: EventEnvelope) -> Lines:
    return Lines(
        "declined as not an incident",
        "declined: assessed as not an incident",
        fields(("reason", event.incident_declined.reason)),
    )


def _merged(event: EventEnvelope) -> Lines:
    line = f"merged as a duplicate into {event.incident_merged.into}"
    return Lines(line, line)


def _closed(event: EventEnvelope) -> Lines:
    closed = event.incident_closed
    line = f"closed ({closed.closure_code.replace('_', ' ') or 'closed'})"
    return Lines(line, line, fields(("by", event.actor.name), ("summary", closed.summary)))


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
    return Lines(
        f"reclassified ({', '.join(parts)}){tasks}", client, fields(("reason", change.reason))
    )


def _role_assigned(event: EventEnvelope) -> Lines:
    assigned = event.incident_role_assigned
    return Lines(
        f"{assigned.role.replace('_', ' ')} named",
        fields=fields(
            ("person", assigned.person.name),
            ("taking_over_from", assigned.previous.name if assigned.previous.id else ""),
            ("briefing", assigned.briefing),
        ),
    )


def _responder_added(event: EventEnvelope) -> Lines:
    person = event.incident_responder_added.person
    return Lines("responder joined", fields=fields(("person", person.name)))


def _responder_removed(event: EventEnvelope) -> Lines:
    person = event.incident_responder_removed.person
    return Lines("responder left", fields=fields(("person", person.name)))


def _task_added(event: EventEnvelope) -> Lines:
    task = event.task_added.task
    required = "required " if task.required else ""
    return Lines(f"{required}{task.phase} task added", fields=fields(("title", task.title)))


def _task_updated(event: EventEnvelope) -> Lines:
    updated = event.task_updated
    task = updated.task
    moved = (
        f"{updated.old_status} → {task.status}" if updated.old_status != task.status else "updated"
    )
    return Lines(f"task {moved}", fields=fields(("title", task.title)))


def _notification_sent(event: EventEnvelope) -> Lines:
    # Notify writes the subject itself, from the priority and the incident's id.
    sent = event.notification_sent
    return Lines(f"notified {sent.audience} via {sent.channel}: {sent.subject}")


def _escalation_step_reached(event: EventEnvelope) -> Lines:
    step = event.escalation_step_reached
    who = people(len(step.targets)) if step.targets else "nobody on call"
    paged = fields(*each("paged", step.targets), *each("not_paged", step.not_paged))
    if step.fallback:
        return Lines(f"escalation ran out: paging the firm's fallback ({who})", fields=paged)
    repeat = f", repeat {step.round}" if step.round else ""
    resumed = "acknowledgement lapsed without progress; " if step.resumed else ""
    missing = len(step.not_paged)
    skipped = f"; {people(missing)} not paged (deactivated or unknown)" if missing else ""
    return Lines(
        f"{resumed}escalation step {step.step + 1}{repeat}: paging {who}{skipped}", fields=paged
    )


def _page_delivered(event: EventEnvelope) -> Lines:
    page = event.page_delivered
    return Lines(f"paged by {page.channel}", fields=fields(*each("person", [page.person])))


def _page_failed(event: EventEnvelope) -> Lines:
    page = event.page_failed
    final = "gave up" if page.final else "will retry"
    return Lines(
        f"page by {page.channel} failed (attempt {page.attempts}, {final})",
        # The channel's error may quote what a mail server or webhook answered.
        fields=fields(*each("person", [page.person]), ("error", page.error)),
    )


def _escalation_stopped(event: EventEnvelope) -> Lines:
    # The reason is notify's own: what stopped it (acknowledged, resolved, …).
    return Lines(f"escalation stopped: {event.escalation_stopped.reason}")


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
    ALERT_ACKNOWLEDGED: alert_narration.alert_acknowledged,
    ALERT_RESOLVED: alert_narration.alert_resolved,
    ALERT_RETRIGGERED: alert_narration.alert_retriggered,
}


def narrate(event: EventEnvelope) -> Lines:
    return NARRATORS[event.type](event)
