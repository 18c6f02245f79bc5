"""Review's storage: every incident's timeline; its investigation (time spent, the analysis)
and its actions; plus outbox and inbox."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from firebreak.consumer import define_inbox_table
from firebreak.database import sequence_column
from firebreak.dead_letters import define_dead_letter_table
from firebreak.outbox import define_outbox_table

metadata = MetaData()

timeline_entries = Table(
    "timeline_entries",
    metadata,
    sequence_column(),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("type", String(100), nullable=False),
    Column("producer", String(40), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False),
    Column("actor_id", String(64), nullable=False, server_default=""),
    Column("actor_kind", String(20), nullable=False, server_default="system"),
    Column("actor_name", String(200), nullable=False, server_default=""),
    # The words a client key sees; NULL: the entry is internal only.
    Column("client_summary", Text),
    # When it was written down; occurred_at is when it happened (a note can tell of earlier).
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("key_event", Boolean, nullable=False, server_default=false()),
    # What people wrote, beside the summaries rather than in them: [{name, value}] in order,
    # for staff, and the part of it a client reads (lines.py). Empty on entries written before
    # revision 0006, whose summaries hold such values themselves.
    Column("fields", JSON, nullable=False, server_default="[]"),
    Column("client_fields", JSON, nullable=False, server_default="[]"),
    Index("ix_timeline_incident", "incident_id", "occurred_at"),
)

# Time people spent on an incident, as they logged it: what the firm bills its client for.
time_entries = Table(
    "time_entries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("person_name", String(200), nullable=False),
    Column("role", String(30), nullable=False),
    Column("activity", Text, nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),  # when the work was done
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_time_entries_incident", "incident_id", "at"),
    Index("ix_time_entries_at", "at"),
)

# Every version of each incident's analysis, kept whole: the newest is the analysis.
analysis_versions = Table(
    "analysis_versions",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("summary", Text, nullable=False),
    Column("root_cause", Text, nullable=False),
    Column("five_whys", JSON, nullable=False),  # [str]
    Column("contributing_factors", JSON, nullable=False),  # [{category, description}]
    Column("author_id", String(64), nullable=False),
    Column("author_kind", String(20), nullable=False),
    Column("author_name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Remediation, recovery, corrective and preventive actions. Their next due alarm (overdue, or
# an effectiveness check falling due) is a row's alarm_at, not a timer in memory, so a
# restarted review still raises it, once.
action_items = Table(
    "action_items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("incident_reference", String(32), nullable=False),
    Column("incident_title", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("owner_name", String(200), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("verification_required", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("wont_do_reason", Text),
    Column("approved_by_id", String(64)),
    Column("approved_by_name", String(200)),
    Column("done_at", DateTime(timezone=True)),
    Column("verified_by_id", String(64)),
    Column("verified_by_name", String(200)),
    Column("verified_at", DateTime(timezone=True)),
    # When its owner was told it is overdue; NULL: not yet (for the current due_at).
    Column("overdue_reminded_at", DateTime(timezone=True)),
    # The effectiveness check of a corrective action once done; NULL status: none.
    Column("check_status", String(20)),  # scheduled | due | effective | not_effective
    Column("check_due_at", DateTime(timezone=True)),
    Column("checked_by_id", String(64)),
    Column("checked_by_name", String(200)),
    Column("checked_at", DateTime(timezone=True)),
    Column("check_note", Text),
    # When the alarm worker looks at it next; NULL: nothing is due to happen.
    Column("alarm_at", DateTime(timezone=True)),
    Column("created_by_id", String(64), nullable=False),
    Column("created_by_name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("trace_context", JSON, nullable=False),  # the request's, for the alarms' spans
    Index("ix_action_items_incident", "incident_id", "created_at"),
    Index("ix_action_items_alarm", "alarm_at"),
)

# What review knows of each incident from the events it consumes (issue 11, §3-§5): its
# report, and its response state as of the newest version seen (a late or repeated event
# changes nothing), with the closure. The PIR, the closure gates and the metrics read it.
incident_records = Table(
    "incident_records",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("reference", String(32), nullable=False, server_default=""),
    Column("title", String(200), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("affected_assets", JSON),  # [str]; NULL until the report is seen
    Column("type", String(40), nullable=False, server_default=""),
    Column("impact", String(20), nullable=False, server_default=""),
    Column("urgency", String(20), nullable=False, server_default=""),
    Column("priority", String(4), nullable=False, server_default=""),
    Column("highest_priority", String(4), nullable=False, server_default=""),
    Column("status", String(20), nullable=False, server_default="reported"),
    Column("state_version", Integer, nullable=False, server_default="0"),
    Column("roles", JSON),  # {role: {id, name}}
    Column("responders", JSON),  # [{id, name}]
    Column("detected_at", DateTime(timezone=True)),
    Column("reported_at", DateTime(timezone=True)),
    Column("triaged_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("contained_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("acknowledge_due", DateTime(timezone=True)),
    Column("contain_due", DateTime(timezone=True)),
    Column("resolve_due", DateTime(timezone=True)),
    Column("closure_code", String(20)),
    Column("closure_summary", Text),
    Index("ix_incident_records_reported", "reported_at"),
    Index("ix_incident_records_client", "client_id", "reported_at"),
)

# Each evidence item as its custody events tell it: who holds it, and whether a transfer of it
# awaits its receipt (custody in the air: "checked out", which holds back closing).
evidence_records = Table(
    "evidence_records",
    metadata,
    Column("evidence_id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False, server_default=""),
    Column("size_bytes", BigInteger, nullable=False, server_default="0"),
    Column("collected_by", String(200), nullable=False, server_default=""),
    Column("collected_at", DateTime(timezone=True)),
    Column("holder_id", String(64), nullable=False, server_default=""),
    Column("holder_name", String(200), nullable=False, server_default=""),
    Column("pending_transfer_id", String(36)),
    Column("pending_receiver_id", String(64)),
    Column("pending_receiver_name", String(200)),
    # The custody log position the holder columns are as of: an older entry arriving late
    # changes nothing. -1: none seen yet.
    Column("custody_position", Integer, nullable=False, server_default="-1"),
    Column("disposed", Boolean, nullable=False, server_default=false()),
    Index("ix_evidence_records_incident", "incident_id"),
)

# Each deadline notify started, and how it ended: met (late or not), missed, set aside as not
# applicable with a reason, or cancelled with a declined or merged incident.
deadline_records = Table(
    "deadline_records",
    metadata,
    Column("deadline_id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("flag", String(20), nullable=False, server_default=""),
    Column("source", String(1000), nullable=False, server_default=""),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    Column("settled_at", DateTime(timezone=True)),
    Column("late", Boolean, nullable=False, server_default=false()),
    Column("reference", String(200), nullable=False, server_default=""),
    Column("not_applicable_reason", Text),
    Index("ix_deadline_records_incident", "incident_id"),
)

# The post-incident review: its narrative, and the facts as drafted (the PostIncidentReview
# message's fact fields, as protobuf JSON). Every change is a new version.
pirs = Table(
    "pirs",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("summary", Text, nullable=False),
    Column("impact", Text, nullable=False),
    Column("what_went_well", Text, nullable=False),
    Column("what_went_wrong", Text, nullable=False),
    Column("lessons_learned", Text, nullable=False),
    Column("facts", JSON, nullable=False),
    Column("drafted_by_id", String(64), nullable=False),
    Column("drafted_by_kind", String(20), nullable=False),
    Column("drafted_by_name", String(200), nullable=False),
    Column("drafted_at", DateTime(timezone=True), nullable=False),
    Column("updated_by_id", String(64), nullable=False),
    Column("updated_by_kind", String(20), nullable=False),
    Column("updated_by_name", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Signatures are of one version of a PIR: those of earlier versions stay, for the record.
pir_signatures = Table(
    "pir_signatures",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("person_id", String(64), primary_key=True),
    Column("person_name", String(200), nullable=False),
    Column("capacity", String(10), nullable=False),  # manager | attendee
    Column("signed_at", DateTime(timezone=True), nullable=False),
)

# Review's own events: notes, the analysis and actions (each also on the timeline at once).
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
dead_letters = define_dead_letter_table(metadata)
