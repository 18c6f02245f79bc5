"""Notify's storage: notifications sent, its copy of people, on-call schedules, escalation
policies, escalations, deliveries, contact methods, plus outbox and inbox."""

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
)

from firebreak.consumer import define_inbox_table
from firebreak.dead_letters import define_dead_letter_table
from firebreak.outbox import define_outbox_table

metadata = MetaData()

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("audience", String(200), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Index("ix_notifications_incident", "incident_id"),
)

# Notify's own copy of the gateway's people (person.registered / person.changed): whom to
# page and how to reach them, without asking the gateway at 3 a.m.
people = Table(
    "people",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("role", String(20), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("clients", JSON),  # the wall; NULL: every client
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),  # the event's time
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    # {"layers": [...], "overrides": [...]} as the API takes them (times as ISO 8601).
    Column("definition", JSON, nullable=False),
    Column("version", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_schedules_created", "created_at", "id"),
)

escalation_policies = Table(
    "escalation_policies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("client_id", String(36)),  # NULL: the firm's default for its priorities
    Column("priorities", JSON, nullable=False),
    Column("page", Boolean, nullable=False),
    # [{"targets": [{"person_id"} | {"schedule_id"}], "after_minutes": n}, ...]
    Column("steps", JSON, nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("version", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_policies_created", "created_at", "id"),
)

# One escalation per incident: where it is in its policy (a snapshot of the version that ran)
# and when its next step falls due. The due time lives here, not in memory, so a restarted
# notify carries on where the last one stopped.
escalations = Table(
    "escalations",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("reference", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("policy", JSON, nullable=False),  # id, version, steps, repeat, page
    Column("step", Integer, nullable=False),  # the next step to run
    Column("round", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # running | stopped | exhausted
    Column("next_at", DateTime(timezone=True)),  # NULL once it stopped or ran out
    Column("stop_reason", String(40)),
    # The trace context of the triage that started it: every step and page joins that trace.
    Column("trace_context", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_escalations_due", "status", "next_at"),
)

# Every attempt to reach one person about one step of one escalation.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(36), primary_key=True),  # the webhook-id / Message-ID, stable
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("person_id", String(36), nullable=False),
    Column("person_name", String(200), nullable=False),
    Column("step", Integer, nullable=False),
    Column("channel", String(20), nullable=False),  # the contact method's kind
    Column("address", String(2000), nullable=False),
    # A webhook method's signing secret, copied from contact_methods (stored as given, see
    # there); NULL for other kinds. Never listed.
    Column("secret", String(200)),
    # Which of the person's contact methods this is: 0 their email, else the added method's
    # position. When it finally fails, the method after it is tried (contact_methods.py).
    Column("method_index", Integer, nullable=False, server_default="0"),
    Column("status", String(20), nullable=False),  # pending | sending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(500)),
    # When to try (pending) or when a claim on it lapses (sending: a crashed sender's).
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("reference", String(32), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", String(20_000), nullable=False),
    # The page's signed, expiring one-click acknowledge link (firebreak/ack_links.py); NULL
    # when no FIREBREAK_LINK_SECRET is set.
    Column("ack_url", String(2000)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("trace_context", JSON, nullable=False),
    # What the message is for: page | status_update | update_reminder | deadline_reminder |
    # deadline_missed. Only a page that finally fails moves an escalation on.
    Column("purpose", String(30), nullable=False, server_default="page"),
    # The message's HTML part as rendered from its template; NULL: text only.
    Column("html", Text),
    Index("ix_deliveries_due", "status", "due_at"),
    Index("ix_deliveries_incident", "incident_id", "created_at"),
)

# How each person is reached, after their email (always first, implicitly, from `people`): the
# methods they added, tried in `position` order when the one before finally fails.
contact_methods = Table(
    "contact_methods",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("person_id", String(36), nullable=False),
    Column("position", Integer, nullable=False),  # 1, 2, …: the order added (0 is the email)
    Column("kind", String(20), nullable=False),  # email | webhook | slack | teams
    Column("address", String(2000), nullable=False),
    # A webhook's signing secret, stored as given: it is the HMAC key the receiver also holds,
    # so notify needs it in the clear to sign with (it cannot be hashed). The API never returns
    # it, only whether there is one.
    Column("secret", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_contact_methods_person", "person_id", "position", unique=True),
)

# Status updates as posted (issue 9, §4): what was said, to whom (internal staff or the
# client's contacts), by whom.
status_updates = Table(
    "status_updates",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("audience", String(20), nullable=False),  # internal | client
    Column("body", String(10_000), nullable=False),
    Column("author_id", String(36), nullable=False),
    Column("author_kind", String(20), nullable=False),
    Column("author_name", String(200), nullable=False),
    Column("recipients", Integer, nullable=False),  # messages queued
    Column("posted_at", DateTime(timezone=True), nullable=False),
    Index("ix_status_updates_incident", "incident_id", "posted_at"),
)

# Each open incident's update cadence: what notify knows of it from the lifecycle events (the
# newest ResponseState it has seen), and when the next status update falls due. The due time
# is a row, not a timer in memory, so a restarted notify still reminds, once.
update_cadences = Table(
    "update_cadences",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("reference", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("status", String(20), nullable=False),
    Column("state_version", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    # {"incident_commander": {id, name}, "communications_lead": …, "scribe": …,
    #  "responders": [{id, name}, …]}: whom internal updates and reminders go to.
    Column("roles", JSON, nullable=False),
    # What the next update is counted from: triage, a reopening, the last update or the last
    # reminder; the next is due one interval (the priority's) after it.
    Column("since", DateTime(timezone=True), nullable=False),
    Column("last_update_at", DateTime(timezone=True)),  # NULL: none posted yet
    Column("next_due_at", DateTime(timezone=True)),  # NULL: none expected (ended, or P4)
    Column("trace_context", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_update_cadences_due", "next_due_at"),
)

# The flags set on each incident (issue 9, §5): each was set once and started its regulatory
# deadlines; setting it again starts nothing.
incident_flags = Table(
    "incident_flags",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("flag", String(20), primary_key=True),  # personal_data | nis2 | dora | sec
    Column("client_id", String(36), nullable=False),
    Column("aware_at", DateTime(timezone=True), nullable=False),
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    Column("flagged_by", String(200), nullable=False),  # the actor's name
)

# Each client's contractual deadline rules as last set, whole: [{name, description,
# priorities, within_minutes, met_by}]. Deadlines already started keep the rule they started
# with.
client_deadline_rules = Table(
    "client_deadline_rules",
    metadata,
    Column("client_id", String(36), primary_key=True),
    Column("rules", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every deadline of every incident, regulatory or contractual. Its next reminder and its due
# time are in the row (next_at), not in memory, so a restarted notify still reminds and still
# records a miss, once.
deadlines = Table(
    "deadlines",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("client_id", String(36), nullable=False),
    Column("reference", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # regulatory | contractual
    Column("rule", String(100), nullable=False),
    Column("flag", String(20)),  # regulatory only
    Column("source", String(1000), nullable=False),  # the legal source, or the contract's words
    Column("met_by", String(20), nullable=False),  # manual | client_update
    Column("due_at", DateTime(timezone=True), nullable=False),
    # pending | met | missed | cancelled | not_applicable
    Column("status", String(20), nullable=False),
    # Lead times (minutes before due_at) whose reminders are still to come, largest first.
    Column("reminders", JSON, nullable=False),
    # When the deadline watch looks at it next: its next reminder, else due_at; NULL once it
    # is met, missed or cancelled.
    Column("next_at", DateTime(timezone=True)),
    Column("met_at", DateTime(timezone=True)),
    Column("met_reference", String(200)),  # not_applicable: the reason instead
    Column("late", Boolean, nullable=False),
    Column("cancelled_because", String(20)),  # declined | merged
    # The trace of what started it: reminders and the miss join it.
    Column("trace_context", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_deadlines_due", "status", "next_at"),
    Index("ix_deadlines_incident", "incident_id", "due_at"),
    # A rule starts once per incident, however often its flag or priority comes again.
    Index("ix_deadlines_rule", "incident_id", "kind", "rule", unique=True),
)

outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
dead_letters = define_dead_letter_table(metadata)
