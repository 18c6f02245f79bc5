"""Who may do what: the principal a key stands for, THE permission table, and the one function
that enforces it. Routes never compare roles themselves; they call `authorize` (or depend on
`dependencies.require`), so the table below is the whole truth and README.md prints it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from firebreak.api.events.v1 import events_pb2
from services.gateway.problems import Problem

OPERATOR_CLIENT_ID = "operator"  # the services firm itself; owns the bootstrap admin key


class PrincipalKind(StrEnum):
    CLIENT_SYSTEM = "client_system"  # a client's key that belongs to no person
    CLIENT_CONTACT = "client_contact"  # a person with role client: one client's contact
    RESPONDER = "responder"
    MANAGER = "manager"
    # A person with role admin, or an operator key with role admin and no person (bootstrap).
    ADMIN = "admin"


STAFF = frozenset({PrincipalKind.RESPONDER, PrincipalKind.MANAGER, PrincipalKind.ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who a request is, as authenticated from its key."""

    kind: PrincipalKind
    id: str  # the person's id, or the key's id when the key belongs to no person
    name: str  # the person's name, or "<client name> system" / "operator admin key"
    client_id: str  # "operator" for staff
    key_id: str
    # Staff: the clients inside their ethical wall, None for every client. Client kinds:
    # exactly their own client, so `can_see_client` means the same for everyone.
    clients: frozenset[str] | None

    @property
    def is_staff(self) -> bool:
        return self.kind in STAFF

    @property
    def person_id(self) -> str | None:
        return None if self.id == self.key_id else self.id

    def as_actor(self) -> events_pb2.Actor:
        """Who did it, as the events the principal's commands cause record it."""
        return events_pb2.Actor(id=self.id, kind=self.kind.value, name=self.name)

    def visible_clients(self) -> frozenset[str] | None:
        """The clients whose incidents and contacts this principal may see; None for all. A
        wall separates clients from each other, not staff from the firm's own (operator's)."""
        if self.clients is None:
            return None
        return self.clients | {OPERATOR_CLIENT_ID} if self.is_staff else self.clients

    def can_see_client(self, client_id: str) -> bool:
        visible = self.visible_clients()
        return visible is None or client_id in visible


class Action(StrEnum):
    INCIDENT_REPORT = "incident_report"
    INCIDENT_READ = "incident_read"
    INCIDENT_WORK_READ = "incident_work_read"
    INCIDENT_ACKNOWLEDGE = "incident_acknowledge"
    INCIDENT_COMMAND = "incident_command"
    CLIENT_MANAGE = "client_manage"
    CLIENT_READ = "client_read"
    PERSON_READ = "person_read"
    PERSON_MANAGE = "person_manage"
    KEY_ISSUE = "key_issue"
    KEY_LIST = "key_list"
    KEY_REVOKE = "key_revoke"
    ONCALL_READ = "oncall_read"
    ONCALL_MANAGE = "oncall_manage"
    CONTACT_READ = "contact_read"
    CONTACT_MANAGE = "contact_manage"
    DEADLINE_MANAGE = "deadline_manage"
    DEADLINE_RULES_MANAGE = "deadline_rules_manage"
    STATUS_UPDATE_POST = "status_update_post"
    INCIDENT_INVESTIGATE = "incident_investigate"
    ACTION_APPROVE = "action_approve"
    TIME_REPORT = "time_report"
    EVIDENCE_ADD = "evidence_add"
    EVIDENCE_READ = "evidence_read"
    EVIDENCE_CUSTODY = "evidence_custody"
    EVIDENCE_HOLD = "evidence_hold"
    EVIDENCE_EXPORT = "evidence_export"
    REVIEW_WRITE = "review_write"
    REVIEW_APPROVE = "review_approve"
    INCIDENT_CLOSE = "incident_close"
    REPORT_READ = "report_read"
    DEAD_LETTER_MANAGE = "dead_letter_manage"
    AUDIT_READ = "audit_read"
    INTEGRATION_MANAGE = "integration_manage"


ACTION_SCOPE: dict[Action, str] = {
    Action.INCIDENT_REPORT: "report an incident (staff report into `operator`)",
    Action.INCIDENT_READ: "read, list and follow the timeline of incidents",
    Action.INCIDENT_WORK_READ: "read an incident's internal work: tasks, allowed commands, "
    "every delivery of its pages, its deadlines",
    Action.INCIDENT_ACKNOWLEDGE: "acknowledge an incident",
    Action.INCIDENT_COMMAND: "contain, resolve, reopen, decline, merge, reclassify; "
    "roles, responders, tasks",
    Action.CLIENT_MANAGE: "create clients; issue client-system and operator keys",
    Action.CLIENT_READ: "list client organisations",
    Action.PERSON_READ: "list and read people",
    Action.PERSON_MANAGE: "add people, change them, deactivate them",
    Action.KEY_ISSUE: "issue a person's personal key",
    Action.KEY_LIST: "list API keys (never the key or its hash)",
    Action.KEY_REVOKE: "revoke an API key",
    Action.ONCALL_READ: "read on-call schedules, who is on call, escalation policies",
    Action.ONCALL_MANAGE: "create, change and delete schedules and escalation policies",
    Action.CONTACT_READ: "list a person's contact methods (never a webhook's secret)",
    Action.CONTACT_MANAGE: "add and delete a person's contact methods",
    Action.DEADLINE_MANAGE: "flag an incident (starting its regulatory deadlines); record one "
    "of its deadlines met, or not applicable with a reason",
    Action.DEADLINE_RULES_MANAGE: "read and set a client's contractual deadline rules",
    Action.STATUS_UPDATE_POST: "post a status update on an incident, internal or to the "
    "client's contacts",
    Action.INCIDENT_INVESTIGATE: "write notes, mark key events, log time spent, write the "
    "analysis; add actions and move them on, confirm their effectiveness",
    Action.ACTION_APPROVE: "approve that an action will not be done (`wont_do`)",
    Action.TIME_REPORT: "export time spent per client, person and role",
    Action.EVIDENCE_ADD: "submit evidence for an incident (the item and its metadata)",
    Action.EVIDENCE_READ: "list and read evidence with its custody log, download it (each "
    "download is recorded); a client sees the client-safe part; confirm a transfer's receipt "
    "(staff, as its receiver)",
    Action.EVIDENCE_CUSTODY: "transfer, seal, unseal and verify evidence",
    Action.EVIDENCE_HOLD: "set and release legal hold; dispose of evidence",
    Action.EVIDENCE_EXPORT: "export an incident's evidence with its whole custody logs (each "
    "item's content read is recorded as an access), and its custody report",
    Action.REVIEW_WRITE: "draft and edit an incident's post-incident review; sign it as an "
    "attendee",
    Action.REVIEW_APPROVE: "sign a post-incident review off as the manager (the signature that "
    "counts)",
    Action.INCIDENT_CLOSE: "close a resolved incident whose closure gates are met",
    Action.REPORT_READ: "read the response metrics and a client's monthly summary (a client: "
    "its own)",
    Action.DEAD_LETTER_MANAGE: "list every service's dead letters (events its consumer gave up "
    "on), replay or discard one",
    Action.AUDIT_READ: "read the audit log of administrative acts and verify its hash chain",
    Action.INTEGRATION_MANAGE: "create, list, read, rotate the key of and disable a client's "
    "integrations (its monitoring's alert senders)",
}

# Actions on an incident: a principal who may not see the incident at all is told it does not
# exist (404), exactly as for a missing one, so ids cannot be probed across clients or walls.
INCIDENT_ACTIONS = frozenset(
    {
        Action.INCIDENT_REPORT,
        Action.INCIDENT_READ,
        Action.INCIDENT_WORK_READ,
        Action.INCIDENT_ACKNOWLEDGE,
        Action.INCIDENT_COMMAND,
        Action.DEADLINE_MANAGE,
        Action.STATUS_UPDATE_POST,
        Action.INCIDENT_INVESTIGATE,
        Action.ACTION_APPROVE,
        Action.EVIDENCE_ADD,
        Action.EVIDENCE_READ,
        Action.EVIDENCE_CUSTODY,
        Action.EVIDENCE_HOLD,
        Action.EVIDENCE_EXPORT,
        Action.REVIEW_WRITE,
        Action.REVIEW_APPROVE,
        Action.INCIDENT_CLOSE,
    }
)


class Grant(StrEnum):
    ALL = "all"  # any object
    OWN_CLIENT = "own client"  # client kinds: their own client's incidents
    WALL = "wall"  # staff: incidents of clients inside their wall
    PARTICIPANT = "participant"  # staff inside the wall who command or respond to the incident
    SELF = "self"  # only their own person, or their own keys
    COMMUNICATOR = "communicator"  # staff inside the wall who speak for the incident
    COMMANDER = "commander"  # staff inside the wall who command it, where the firm allows


GRANT_MEANING: dict[Grant, str] = {
    Grant.ALL: "any object",
    Grant.OWN_CLIENT: "only their own client's incidents",
    Grant.WALL: "what belongs to the clients inside their ethical wall, and the firm's own (all "
    "clients when unwalled); anything else is a `404`",
    Grant.PARTICIPANT: "inside the wall, and only as the incident's commander, a role holder or "
    "one of its responders (or, for an action, its owner)",
    Grant.SELF: "only their own keys, contact methods and time (a client system's key: only "
    "itself)",
    Grant.COMMUNICATOR: "inside the wall, and only as the incident's communications lead or its "
    "commander",
    Grant.COMMANDER: "inside the wall, and only as the incident's commander, where the firm "
    "allows it (`FIREBREAK_COMMANDER_MAY_CLOSE`)",
}

# Short names, so that each row of the table reads across.
SYSTEM, CONTACT = PrincipalKind.CLIENT_SYSTEM, PrincipalKind.CLIENT_CONTACT
RESPONDER, MANAGER, ADMIN = PrincipalKind.RESPONDER, PrincipalKind.MANAGER, PrincipalKind.ADMIN
ALL, OWN, WALL, PART, SELF = Grant.ALL, Grant.OWN_CLIENT, Grant.WALL, Grant.PARTICIPANT, Grant.SELF

# THE permission table. A missing entry means "not allowed".
PERMISSIONS: dict[Action, dict[PrincipalKind, Grant]] = {
    Action.INCIDENT_REPORT: {SYSTEM: OWN, CONTACT: OWN, RESPONDER: ALL, MANAGER: ALL, ADMIN: ALL},
    Action.INCIDENT_READ: {SYSTEM: OWN, CONTACT: OWN, RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.INCIDENT_WORK_READ: {RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.INCIDENT_ACKNOWLEDGE: {RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.INCIDENT_COMMAND: {RESPONDER: PART, MANAGER: WALL, ADMIN: WALL},
    Action.CLIENT_MANAGE: {ADMIN: ALL},
    Action.CLIENT_READ: {SYSTEM: OWN, CONTACT: OWN, RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.PERSON_READ: {RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.PERSON_MANAGE: {ADMIN: ALL},
    Action.KEY_ISSUE: {ADMIN: ALL},
    Action.KEY_LIST: {SYSTEM: SELF, CONTACT: SELF, RESPONDER: SELF, MANAGER: SELF, ADMIN: ALL},
    Action.KEY_REVOKE: {SYSTEM: SELF, CONTACT: SELF, RESPONDER: SELF, MANAGER: SELF, ADMIN: ALL},
    Action.ONCALL_READ: {RESPONDER: ALL, MANAGER: ALL, ADMIN: ALL},
    Action.ONCALL_MANAGE: {MANAGER: ALL, ADMIN: ALL},
    Action.CONTACT_READ: {CONTACT: SELF, RESPONDER: SELF, MANAGER: WALL, ADMIN: WALL},
    Action.CONTACT_MANAGE: {CONTACT: SELF, RESPONDER: SELF, MANAGER: SELF, ADMIN: ALL},
    Action.DEADLINE_MANAGE: {RESPONDER: PART, MANAGER: WALL, ADMIN: WALL},
    Action.DEADLINE_RULES_MANAGE: {MANAGER: WALL, ADMIN: WALL},
    Action.STATUS_UPDATE_POST: {RESPONDER: Grant.COMMUNICATOR, MANAGER: WALL, ADMIN: WALL},
    Action.INCIDENT_INVESTIGATE: {RESPONDER: PART, MANAGER: WALL, ADMIN: WALL},
    Action.ACTION_APPROVE: {MANAGER: WALL, ADMIN: WALL},
    Action.TIME_REPORT: {RESPONDER: SELF, MANAGER: WALL, ADMIN: WALL},
    Action.EVIDENCE_ADD: {SYSTEM: OWN, CONTACT: OWN, RESPONDER: PART, MANAGER: WALL, ADMIN: WALL},
    Action.EVIDENCE_READ: {SYSTEM: OWN, CONTACT: OWN, RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.EVIDENCE_CUSTODY: {RESPONDER: PART, MANAGER: WALL, ADMIN: WALL},
    Action.EVIDENCE_HOLD: {MANAGER: WALL, ADMIN: WALL},
    Action.EVIDENCE_EXPORT: {RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.REVIEW_WRITE: {RESPONDER: PART, MANAGER: WALL, ADMIN: WALL},
    Action.REVIEW_APPROVE: {MANAGER: WALL, ADMIN: WALL},
    Action.INCIDENT_CLOSE: {RESPONDER: Grant.COMMANDER, MANAGER: WALL, ADMIN: WALL},
    Action.REPORT_READ: {SYSTEM: OWN, CONTACT: OWN, RESPONDER: WALL, MANAGER: WALL, ADMIN: WALL},
    Action.DEAD_LETTER_MANAGE: {ADMIN: ALL},
    Action.AUDIT_READ: {ADMIN: ALL},
    Action.INTEGRATION_MANAGE: {MANAGER: WALL, ADMIN: WALL},
}

# What a SELF grant is limited to, and who may do more, as a refusal says it.
OWN_ONLY: dict[Action, str] = {
    Action.KEY_LIST: "its own keys; an admin may act on anyone's",
    Action.KEY_REVOKE: "its own keys; an admin may act on anyone's",
    Action.CONTACT_READ: "their own contact methods; managers and admins may read those of the "
    "people they may see",
    Action.CONTACT_MANAGE: "their own contact methods; an admin may change anyone's",
}


def incident_not_found(incident_id: str) -> Problem:
    # Word for word what intake answers for an incident that does not exist.
    return Problem(404, f"incident {incident_id} not found" if incident_id else "Not found.")


def _allowed_kinds(action: Action) -> str:
    return ", ".join(kind.value for kind in PrincipalKind if kind in PERMISSIONS[action])


def scope(principal: Principal, action: Action) -> Grant:
    """The grant `principal` holds for `action`, before looking at any object: routes that
    list (incidents, keys) narrow what they return by it. Raises when there is none."""
    grant = PERMISSIONS[action].get(principal.kind)
    if grant is not None:
        return grant
    if action in INCIDENT_ACTIONS and not principal.is_staff:
        raise incident_not_found("")  # clients must not learn which commands exist
    raise Problem(
        403,
        f"{action.value} is not allowed for {principal.kind.value}: only for "
        f"{_allowed_kinds(action)}.",
    )


def authorize(
    principal: Principal,
    action: Action,
    *,
    client_id: str | None = None,
    participant: bool = False,
    communicator: bool = False,
    commander: bool = False,
    owner_id: str | None = None,
    incident_id: str = "",
) -> None:
    """Raises a Problem unless `principal` may do `action` on one object.

    Incident actions pass the incident's `client_id` (and `participant`: whether the principal
    commands, holds a role in or responds to it; `communicator`: whether it is the incident's
    communications lead or commander; `commander`: whether it commands it and the firm lets
    commanders close), reading a person their client's `client_id`
    (and `owner_id`, the person's id); key actions pass `owner_id`, the
    owner's id as `Principal.id` spells it (the person's id, or the key's id for a key that
    belongs to no person); contact-method actions the person's `owner_id` and, for the wall,
    their client's `client_id`. A needed argument left out is a bug and fails closed.
    """
    grant = PERMISSIONS[action].get(principal.kind)
    if grant is None:
        if action in INCIDENT_ACTIONS and not principal.is_staff:
            raise incident_not_found(incident_id)
        scope(principal, action)  # raises the 403 naming who may
        return
    if (
        grant
        in (Grant.OWN_CLIENT, Grant.WALL, Grant.PARTICIPANT, Grant.COMMUNICATOR, Grant.COMMANDER)
        and client_id is None
    ):
        raise ValueError(f"authorize({action.value}) needs the incident's client_id")
    if grant is Grant.SELF and owner_id is None:
        raise ValueError(f"authorize({action.value}) needs owner_id")
    # The part in the incident the grant asks for: a communicator's, a commander's (where the
    # firm allows), or any participant's.
    takes_part = {Grant.COMMUNICATOR: communicator, Grant.COMMANDER: commander}.get(
        grant, participant
    )
    if _satisfies(principal, grant, client_id, takes_part, owner_id):
        return
    if action in (Action.PERSON_READ, Action.CONTACT_READ) and grant is Grant.WALL:
        # A client's contact outside the wall is as absent as a person who never existed.
        raise Problem(404, f"person {owner_id} not found" if owner_id else "Not found.")
    if action in (Action.DEADLINE_RULES_MANAGE, Action.INTEGRATION_MANAGE):
        # A client outside the wall is as absent as one that does not exist.
        raise Problem(404, f"client {client_id} not found")
    if action in INCIDENT_ACTIONS:
        assert client_id is not None
        if not principal.can_see_client(client_id) or not principal.is_staff:
            raise incident_not_found(incident_id)
        if grant is Grant.COMMANDER:
            raise Problem(
                403,
                f"{action.value} is not allowed here: only a manager or admin may close an "
                "incident (or its commander, where the firm allows it).",
            )
        if grant is Grant.COMMUNICATOR:
            raise Problem(
                403,
                f"{action.value} is not allowed here: only the incident's communications lead, "
                "its commander or a manager or admin may post its status updates.",
            )
        raise Problem(
            403,
            f"{action.value} is not allowed here: only the incident's commander, its responders "
            "or a manager or admin may run this.",
        )
    raise Problem(
        403,
        f"{action.value} is allowed for {principal.kind.value} only on "
        f"{OWN_ONLY.get(action, OWN_ONLY[Action.KEY_LIST])}.",
    )


def _satisfies(
    principal: Principal,
    grant: Grant,
    client_id: str | None,
    participant: bool,
    owner_id: str | None,
) -> bool:
    match grant:
        case Grant.ALL:
            return True
        case Grant.OWN_CLIENT:
            return not principal.is_staff and client_id == principal.client_id
        case Grant.WALL:
            return (
                principal.is_staff and client_id is not None and principal.can_see_client(client_id)
            )
        case Grant.PARTICIPANT | Grant.COMMUNICATOR | Grant.COMMANDER:
            return (
                principal.is_staff
                and participant
                and client_id is not None
                and principal.can_see_client(client_id)
            )
        case Grant.SELF:
            return owner_id == principal.id


def markdown_table() -> str:
    """THE permission table as Markdown; README.md holds exactly this (a test checks)."""
    kinds = list(PrincipalKind)
    lines = [
        "| action | covers | " + " | ".join(f"`{kind.value}`" for kind in kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    for action in Action:
        cells = [PERMISSIONS[action].get(kind) for kind in kinds]
        lines.append(
            f"| `{action.value}` | {ACTION_SCOPE[action]} | "
            + " | ".join(cell.value if cell else "—" for cell in cells)
            + " |"
        )
    lines.append("")
    lines += [f"- **{grant.value}**: {GRANT_MEANING[grant]}." for grant in Grant]
    lines.append("- **—**: not allowed.")
    return "\n".join(lines) + "\n"
