"""The permission table, enforced by one function: every action, principal kind and situation,
and README.md prints exactly the table the code enforces."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway.permissions import (
    PERMISSIONS,
    Action,
    Grant,
    Principal,
    PrincipalKind,
    authorize,
    markdown_table,
    scope,
)
from services.gateway.problems import Problem

ALPHA, BETA = "client-alpha", "client-beta"
README = Path(__file__).resolve().parents[1] / "README.md"
K = PrincipalKind


def principal_of(kind: PrincipalKind, *, wall: frozenset[str] | None = None) -> Principal:
    """A principal of `kind`: client kinds belong to ALPHA; staff are walled to `wall`."""
    if kind is K.CLIENT_SYSTEM:
        return Principal(kind, "key-1", "Alpha LLP system", ALPHA, "key-1", frozenset({ALPHA}))
    if kind is K.CLIENT_CONTACT:
        return Principal(kind, "person-1", "Ada", ALPHA, "key-1", frozenset({ALPHA}))
    return Principal(kind, "person-1", "Grace", "operator", "key-1", wall)


def one_of_each_kind(*, wall: frozenset[str] | None = None) -> dict[PrincipalKind, Principal]:
    return {kind: principal_of(kind, wall=wall) for kind in PrincipalKind}


def outcome(principal: Principal, action: Action, **situation: object) -> str:
    """ "ok", or the status of the Problem authorize raised."""
    try:
        authorize(principal, action, **situation)  # type: ignore[arg-type]
    except Problem as problem:
        return str(problem.status)
    return "ok"


# --- Incident actions -------------------------------------------------------------------------

# The incident's client and whether the caller commands, holds a role in or responds to it.
SITUATIONS = {
    "inside": {"client_id": ALPHA, "participant": False},
    "inside, participant": {"client_id": ALPHA, "participant": True},
    "outside": {"client_id": BETA, "participant": False},
    "outside, participant": {"client_id": BETA, "participant": True},  # e.g. walled off later
}
CLIENT_KINDS = (K.CLIENT_SYSTEM, K.CLIENT_CONTACT)
STAFF = (K.RESPONDER, K.MANAGER, K.ADMIN)

# Expected outcomes in SITUATIONS' order, with staff walled to ALPHA. For a client kind
# "outside" is another client's incident; for staff, one outside their wall.
ALL_OK, SEEN_NOT_OUTSIDE, NEVER = ("ok",) * 4, ("ok", "ok", "404", "404"), ("404",) * 4
EXPECTED_ON_INCIDENTS: dict[Action, dict[PrincipalKind, tuple[str, ...]]] = {
    Action.INCIDENT_READ: {kind: SEEN_NOT_OUTSIDE for kind in PrincipalKind},
    # Tasks and allowed commands are the firm's internal work: a client sees none of it.
    Action.INCIDENT_WORK_READ: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: SEEN_NOT_OUTSIDE,
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    Action.INCIDENT_ACKNOWLEDGE: {
        K.CLIENT_SYSTEM: NEVER,  # clients must not learn which commands exist
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: SEEN_NOT_OUTSIDE,
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    Action.INCIDENT_COMMAND: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403", "ok", "404", "404"),
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    # Notes, key events, time, the analysis and actions: as the commands (the gateway counts an
    # action's owner as taking part, for their action).
    Action.INCIDENT_INVESTIGATE: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403", "ok", "404", "404"),
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    # Approving that an action will not be done: managers and admins only.
    Action.ACTION_APPROVE: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403",) * 4,
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    # Flags and deadlines met: as the commands, participants, managers and admins.
    Action.DEADLINE_MANAGE: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403", "ok", "404", "404"),
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    # Evidence: clients submit and read their own incidents', staff inside the wall read it;
    # participants submit and keep custody (transfer, seal, verify), as managers and admins do;
    # only managers and admins set legal hold and dispose of it (the gateway answers a 404 for
    # an item outside the wall before asking the table).
    Action.EVIDENCE_ADD: {
        K.CLIENT_SYSTEM: SEEN_NOT_OUTSIDE,
        K.CLIENT_CONTACT: SEEN_NOT_OUTSIDE,
        K.RESPONDER: ("403", "ok", "404", "404"),
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    Action.EVIDENCE_READ: {kind: SEEN_NOT_OUTSIDE for kind in PrincipalKind},
    Action.EVIDENCE_CUSTODY: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403", "ok", "404", "404"),
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    Action.EVIDENCE_HOLD: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403",) * 4,
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    # The post-incident review: participants, managers and admins write it and sign as
    # attendees; only managers and admins sign it off.
    Action.REVIEW_WRITE: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403", "ok", "404", "404"),
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    Action.REVIEW_APPROVE: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403",) * 4,
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    # Closing: managers and admins; a participant who is not the commander (or whose firm does
    # not let commanders close) may not (test_a_commander_closes_only_where_the_firm_allows).
    Action.INCIDENT_CLOSE: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: ("403", "403", "404", "404"),
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
    # The export and custody report carry whole custody logs, the firm's internal record: staff
    # inside the wall only (a client's part of a log could not be checked on its own).
    Action.EVIDENCE_EXPORT: {
        K.CLIENT_SYSTEM: NEVER,
        K.CLIENT_CONTACT: NEVER,
        K.RESPONDER: SEEN_NOT_OUTSIDE,
        K.MANAGER: SEEN_NOT_OUTSIDE,
        K.ADMIN: SEEN_NOT_OUTSIDE,
    },
}


@pytest.mark.parametrize("action", list(EXPECTED_ON_INCIDENTS))
@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_incident_actions_for_walled_staff_and_clients(action: Action, kind: PrincipalKind) -> None:
    principal = principal_of(kind, wall=frozenset({ALPHA}))
    got = tuple(outcome(principal, action, **situation) for situation in SITUATIONS.values())
    assert got == EXPECTED_ON_INCIDENTS[action][kind], dict(zip(SITUATIONS, got, strict=True))


@pytest.mark.parametrize("action", list(EXPECTED_ON_INCIDENTS))
@pytest.mark.parametrize("kind", STAFF)
def test_unwalled_staff_treat_every_client_as_inside(action: Action, kind: PrincipalKind) -> None:
    principal = principal_of(kind, wall=None)
    inside = EXPECTED_ON_INCIDENTS[action][kind][:2]
    got = tuple(outcome(principal, action, **situation) for situation in SITUATIONS.values())
    assert got == inside + inside


@pytest.mark.parametrize("kind", STAFF)
def test_an_empty_wall_sees_no_incident(kind: PrincipalKind) -> None:
    principal = principal_of(kind, wall=frozenset())
    for situation in SITUATIONS.values():
        assert outcome(principal, Action.INCIDENT_READ, **situation) == "404"


@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_everyone_reports_into_their_own_client(kind: PrincipalKind) -> None:
    principal = principal_of(kind, wall=frozenset())  # a wall does not stop reporting
    assert outcome(principal, Action.INCIDENT_REPORT, client_id=principal.client_id) == "ok"
    if kind in CLIENT_KINDS:
        assert outcome(principal, Action.INCIDENT_REPORT, client_id=BETA) == "404"


def test_refusals_say_why_and_hidden_incidents_look_missing() -> None:
    responder = principal_of(K.RESPONDER, wall=frozenset({ALPHA}))
    with pytest.raises(Problem) as refused:
        authorize(responder, Action.INCIDENT_COMMAND, client_id=ALPHA, incident_id="i-1")
    assert refused.value.status == 403
    assert "incident_command" in refused.value.detail
    assert "commander" in refused.value.detail
    with pytest.raises(Problem) as hidden:
        authorize(responder, Action.INCIDENT_READ, client_id=BETA, incident_id="i-1")
    assert hidden.value.detail == "incident i-1 not found"  # intake's words for a missing one
    contact = principal_of(K.CLIENT_CONTACT)
    with pytest.raises(Problem) as unknown_command:
        authorize(contact, Action.INCIDENT_COMMAND, client_id=ALPHA, incident_id="i-1")
    assert unknown_command.value.status == 404
    assert unknown_command.value.detail == hidden.value.detail


# --- Clients, people and keys -----------------------------------------------------------------

# (on their own person or key, on someone else's)
EXPECTED_ELSEWHERE: dict[Action, dict[PrincipalKind, tuple[str, str]]] = {
    Action.CLIENT_MANAGE: {kind: ("403", "403") for kind in PrincipalKind} | {K.ADMIN: ("ok",) * 2},
    Action.PERSON_MANAGE: {kind: ("403", "403") for kind in PrincipalKind} | {K.ADMIN: ("ok",) * 2},
    Action.KEY_ISSUE: {kind: ("403", "403") for kind in PrincipalKind} | {K.ADMIN: ("ok",) * 2},
    Action.KEY_LIST: {kind: ("ok", "403") for kind in PrincipalKind} | {K.ADMIN: ("ok",) * 2},
    Action.KEY_REVOKE: {kind: ("ok", "403") for kind in PrincipalKind} | {K.ADMIN: ("ok",) * 2},
    # Schedules and escalation policies: the firm's own; any staff read them, managers and
    # admins change them, clients neither (403: they are not incidents).
    Action.ONCALL_READ: {kind: ("403", "403") for kind in CLIENT_KINDS}
    | {kind: ("ok", "ok") for kind in STAFF},
    Action.ONCALL_MANAGE: {kind: ("403", "403") for kind in PrincipalKind}
    | {K.MANAGER: ("ok",) * 2, K.ADMIN: ("ok",) * 2},
    # Every service's dead letters carry every client's events: admins only, whatever a wall.
    Action.DEAD_LETTER_MANAGE: {kind: ("403", "403") for kind in PrincipalKind}
    | {K.ADMIN: ("ok",) * 2},
    # The audit log records acts on every client: admins only, whatever a wall.
    Action.AUDIT_READ: {kind: ("403", "403") for kind in PrincipalKind} | {K.ADMIN: ("ok",) * 2},
}


@pytest.mark.parametrize("action", list(EXPECTED_ELSEWHERE))
@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_client_person_and_key_actions(action: Action, kind: PrincipalKind) -> None:
    principal = principal_of(kind)
    got = (
        outcome(principal, action, owner_id=principal.id),
        outcome(principal, action, owner_id="someone-else"),
    )
    assert got == EXPECTED_ELSEWHERE[action][kind]


# Contact methods, on a person: (their own, another member of staff, a contact of a client
# inside the caller's wall, a contact of a client outside it); staff are walled to ALPHA.
def contact_situations(principal: Principal) -> list[dict[str, object]]:
    return [
        {"owner_id": principal.id, "client_id": principal.client_id},
        {"owner_id": "person-2", "client_id": "operator"},
        {"owner_id": "person-3", "client_id": ALPHA},
        {"owner_id": "person-4", "client_id": BETA},
    ]


OWN_ONLY, NOT_EVEN_OWN = ("ok", "403", "403", "403"), ("403",) * 4
EXPECTED_ON_CONTACT_METHODS: dict[Action, dict[PrincipalKind, tuple[str, ...]]] = {
    # The person, and managers and admins who may see the person (a contact outside the wall
    # is as absent as a person who does not exist).
    Action.CONTACT_READ: {
        K.CLIENT_SYSTEM: NOT_EVEN_OWN,  # a key of no person has no contact methods
        K.CLIENT_CONTACT: OWN_ONLY,
        K.RESPONDER: OWN_ONLY,
        K.MANAGER: ("ok", "ok", "ok", "404"),
        K.ADMIN: ("ok", "ok", "ok", "404"),
    },
    # The person, and an admin on anyone's.
    Action.CONTACT_MANAGE: {
        K.CLIENT_SYSTEM: NOT_EVEN_OWN,
        K.CLIENT_CONTACT: OWN_ONLY,
        K.RESPONDER: OWN_ONLY,
        K.MANAGER: OWN_ONLY,
        K.ADMIN: ("ok",) * 4,
    },
}


@pytest.mark.parametrize("action", list(EXPECTED_ON_CONTACT_METHODS))
@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_contact_method_actions(action: Action, kind: PrincipalKind) -> None:
    principal = principal_of(kind, wall=frozenset({ALPHA}))
    got = tuple(
        outcome(principal, action, **situation) for situation in contact_situations(principal)
    )
    assert got == EXPECTED_ON_CONTACT_METHODS[action][kind]


def test_a_refused_contact_method_says_whose_are_allowed() -> None:
    with pytest.raises(Problem) as refused:
        authorize(principal_of(K.MANAGER), Action.CONTACT_MANAGE, owner_id="person-2")
    assert refused.value.status == 403
    assert "their own contact methods" in refused.value.detail and "admin" in refused.value.detail


# A client's contractual deadline rules: (a client inside the caller's wall, one outside it);
# staff are walled to ALPHA. A client outside the wall is as absent as a missing one.
EXPECTED_ON_CLIENT_RULES: dict[Action, dict[PrincipalKind, tuple[str, str]]] = {
    Action.DEADLINE_RULES_MANAGE: {kind: ("403", "403") for kind in PrincipalKind}
    | {K.MANAGER: ("ok", "404"), K.ADMIN: ("ok", "404")},
    # A client's integrations (its monitoring's alert senders), likewise.
    Action.INTEGRATION_MANAGE: {kind: ("403", "403") for kind in PrincipalKind}
    | {K.MANAGER: ("ok", "404"), K.ADMIN: ("ok", "404")},
}


@pytest.mark.parametrize("action", list(EXPECTED_ON_CLIENT_RULES))
@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_client_rule_actions(action: Action, kind: PrincipalKind) -> None:
    principal = principal_of(kind, wall=frozenset({ALPHA}))
    got = (outcome(principal, action, client_id=ALPHA), outcome(principal, action, client_id=BETA))
    assert got == EXPECTED_ON_CLIENT_RULES[action][kind]


# Status updates: the incident's communications lead or commander (a communicator), not any
# participant; managers and admins inside the wall.
UPDATE_SITUATIONS = {
    "inside, participant": {"client_id": ALPHA, "participant": True},
    "inside, communicator": {"client_id": ALPHA, "participant": True, "communicator": True},
    "outside, communicator": {"client_id": BETA, "participant": True, "communicator": True},
}
EXPECTED_ON_UPDATES: dict[Action, dict[PrincipalKind, tuple[str, ...]]] = {
    Action.STATUS_UPDATE_POST: {
        K.CLIENT_SYSTEM: ("404", "404", "404"),
        K.CLIENT_CONTACT: ("404", "404", "404"),
        K.RESPONDER: ("403", "ok", "404"),
        K.MANAGER: ("ok", "ok", "404"),
        K.ADMIN: ("ok", "ok", "404"),
    },
}


@pytest.mark.parametrize("action", list(EXPECTED_ON_UPDATES))
@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_status_updates_are_posted_by_the_incidents_communicators(
    action: Action, kind: PrincipalKind
) -> None:
    principal = principal_of(kind, wall=frozenset({ALPHA}))
    got = tuple(outcome(principal, action, **situation) for situation in UPDATE_SITUATIONS.values())
    assert got == EXPECTED_ON_UPDATES[action][kind], dict(zip(UPDATE_SITUATIONS, got, strict=True))


def test_a_refused_status_update_says_who_may_post() -> None:
    responder = principal_of(K.RESPONDER)
    with pytest.raises(Problem) as refused:
        authorize(responder, Action.STATUS_UPDATE_POST, client_id=ALPHA, participant=True)
    assert refused.value.status == 403
    assert "communications lead" in refused.value.detail and "commander" in refused.value.detail


# The time report spans incidents: a responder's covers their own time, a manager's or admin's
# the clients inside their wall; clients get none.
EXPECTED_TIME_REPORT: dict[PrincipalKind, Grant | str] = {
    K.CLIENT_SYSTEM: "403",
    K.CLIENT_CONTACT: "403",
    K.RESPONDER: Grant.SELF,
    K.MANAGER: Grant.WALL,
    K.ADMIN: Grant.WALL,
}


@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_the_time_report_covers_ones_own_time_or_ones_wall(kind: PrincipalKind) -> None:
    try:
        got: Grant | str = scope(principal_of(kind), Action.TIME_REPORT)
    except Problem as refused:
        got = str(refused.status)
    assert got == EXPECTED_TIME_REPORT[kind]


def test_a_commander_closes_only_where_the_firm_allows() -> None:
    responder = principal_of(K.RESPONDER, wall=frozenset({ALPHA}))
    # `commander`: the caller commands the incident and FIREBREAK_COMMANDER_MAY_CLOSE is on.
    assert outcome(responder, Action.INCIDENT_CLOSE, client_id=ALPHA, commander=True) == "ok"
    assert outcome(responder, Action.INCIDENT_CLOSE, client_id=BETA, commander=True) == "404"
    with pytest.raises(Problem) as refused:
        authorize(responder, Action.INCIDENT_CLOSE, client_id=ALPHA, participant=True)
    assert refused.value.status == 403
    assert "manager" in refused.value.detail and "commander" in refused.value.detail
    manager = principal_of(K.MANAGER, wall=frozenset({ALPHA}))
    assert outcome(manager, Action.INCIDENT_CLOSE, client_id=ALPHA, commander=False) == "ok"


# Reports across incidents (metrics, a client's monthly summary), on (the caller's own client or
# one inside its wall, another client): the routes answer a 404 for the other before asking.
EXPECTED_ON_REPORTS: dict[PrincipalKind, tuple[str, str]] = {
    K.CLIENT_SYSTEM: ("ok", "403"),
    K.CLIENT_CONTACT: ("ok", "403"),
    K.RESPONDER: ("ok", "403"),
    K.MANAGER: ("ok", "403"),
    K.ADMIN: ("ok", "403"),
}


@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_reports_cover_ones_own_client_or_ones_wall(kind: PrincipalKind) -> None:
    principal = principal_of(kind, wall=frozenset({ALPHA}))
    got = tuple(
        outcome(principal, Action.REPORT_READ, client_id=client_id) for client_id in (ALPHA, BETA)
    )
    assert got == EXPECTED_ON_REPORTS[kind]
    expected_scope = Grant.OWN_CLIENT if kind in CLIENT_KINDS else Grant.WALL
    assert scope(principal, Action.REPORT_READ) is expected_scope


def test_every_action_and_kind_is_expected_somewhere() -> None:
    expected = (
        EXPECTED_ON_INCIDENTS
        | EXPECTED_ELSEWHERE
        | EXPECTED_ON_CONTACT_METHODS
        | EXPECTED_ON_CLIENT_RULES
        | EXPECTED_ON_UPDATES
        | {Action.TIME_REPORT: EXPECTED_TIME_REPORT}
        | {Action.REPORT_READ: EXPECTED_ON_REPORTS}
    )
    # Reporting, reading people and listing clients have tests of their own.
    own_tests = {Action.INCIDENT_REPORT, Action.PERSON_READ, Action.CLIENT_READ}
    assert set(expected) | own_tests == set(Action)
    assert all(set(row) == set(PrincipalKind) for row in expected.values())


@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_everyone_lists_the_clients_they_may_see(kind: PrincipalKind) -> None:
    """A client's key or contact its own client; staff those inside their wall and the firm
    (the route lists `visible_clients()`, nothing more)."""
    walled = principal_of(kind, wall=frozenset({ALPHA}))
    expected_scope = Grant.OWN_CLIENT if kind in CLIENT_KINDS else Grant.WALL
    assert scope(walled, Action.CLIENT_READ) is expected_scope
    if kind in CLIENT_KINDS:
        assert walled.visible_clients() == frozenset({walled.client_id})
    else:
        assert walled.visible_clients() == frozenset({ALPHA, "operator"})


def test_a_key_of_no_person_owns_only_itself() -> None:
    system = principal_of(K.CLIENT_SYSTEM)
    assert system.person_id is None
    assert outcome(system, Action.KEY_REVOKE, owner_id=system.key_id) == "ok"
    assert outcome(system, Action.KEY_REVOKE, owner_id="key-2") == "403"


def test_a_forgotten_object_fails_closed() -> None:
    with pytest.raises(ValueError, match="client_id"):
        authorize(principal_of(K.RESPONDER), Action.INCIDENT_READ)
    with pytest.raises(ValueError, match="owner_id"):
        authorize(principal_of(K.RESPONDER), Action.KEY_REVOKE)


def test_scope_is_the_grant_before_any_object() -> None:
    assert scope(principal_of(K.ADMIN), Action.KEY_LIST) is Grant.ALL
    assert scope(principal_of(K.CLIENT_SYSTEM), Action.KEY_LIST) is Grant.SELF
    assert scope(principal_of(K.RESPONDER), Action.INCIDENT_COMMAND) is Grant.PARTICIPANT
    with pytest.raises(Problem) as hidden:
        scope(principal_of(K.CLIENT_CONTACT), Action.INCIDENT_COMMAND)
    assert hidden.value.status == 404
    with pytest.raises(Problem) as refused:
        scope(principal_of(K.MANAGER), Action.PERSON_MANAGE)
    assert refused.value.status == 403
    assert "person_manage" in refused.value.detail and "admin" in refused.value.detail


def test_principal_helpers() -> None:
    walled = principal_of(K.MANAGER, wall=frozenset({ALPHA}))
    assert walled.is_staff and walled.person_id == "person-1"
    assert walled.can_see_client(ALPHA) and not walled.can_see_client(BETA)
    assert principal_of(K.ADMIN).can_see_client(BETA)
    contact = principal_of(K.CLIENT_CONTACT)
    assert not contact.is_staff and not contact.can_see_client(BETA)


# --- The README -------------------------------------------------------------------------------


def test_the_readme_prints_the_table_the_code_enforces() -> None:
    table = markdown_table()
    assert table in README.read_text(encoding="utf-8")
    for action, row in PERMISSIONS.items():
        assert f"| `{action.value}` |" in table
        assert all(grant.value in table for grant in row.values())


@pytest.mark.parametrize("kind", STAFF)
def test_staff_read_people_of_the_firm_and_of_clients_inside_their_wall(
    kind: PrincipalKind,
) -> None:
    walled = principal_of(kind, wall=frozenset({ALPHA}))
    for client_id, expected in ((ALPHA, "ok"), ("operator", "ok"), (BETA, "404")):
        assert outcome(walled, Action.PERSON_READ, client_id=client_id, owner_id="p") == expected
    unwalled = principal_of(kind, wall=None)
    assert outcome(unwalled, Action.PERSON_READ, client_id=BETA, owner_id="p") == "ok"


@pytest.mark.parametrize("kind", [K.CLIENT_SYSTEM, K.CLIENT_CONTACT])
def test_clients_read_no_people(kind: PrincipalKind) -> None:
    assert outcome(principal_of(kind), Action.PERSON_READ, client_id=ALPHA, owner_id="p") == "403"
