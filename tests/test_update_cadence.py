"""The update cadence against the real processes and a real SMTP server, with intervals of
seconds: an overdue update reminds the communications lead, else the commander, else the firm's
managers inside the wall; an update postpones the next; resolution stops it and reopening
starts it again; a notify killed mid-wait still reminds once, and two replicas remind once."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from firebreak.launcher import Platform
from firebreak.settings import Settings, SettingsError
from services.notify.update_cadence import Cadence
from services.notify.update_reminders import spoken
from tests.conftest import BACKENDS, database_urls, on_backend
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import bring_to, ok, report_triaged, run
from tests.mail import Mailbox, start_paging_platform
from tests.review_client import said

P1_SECONDS = 4.0  # the expected interval between a P1's updates here
P2_SECONDS = 6.0
OVERDUE = "status_update.overdue"
REMINDER = "status update overdue"  # in the reminder's subject


@pytest.fixture(scope="module", params=BACKENDS)
def cadence_platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: tuple[Mailbox, int],
) -> Iterator[Platform]:
    factory = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    _, port = mailbox
    platform = start_paging_platform(
        tmp_path_factory.mktemp(f"cadence-{request.param}"),
        smtp_port=port,
        database_urls=database_urls(request.param, factory),
        extra_env={
            "FIREBREAK_UPDATE_CADENCE_MINUTES": f"P1={P1_SECONDS / 60},P2={P2_SECONDS / 60}",
            # Acknowledging never pages again here: only reminders are under test.
            "FIREBREAK_ACK_LAPSE_MINUTES": "0",
        },
    )
    yield platform
    platform.stop()


def p1(api: Api, client: Tenant) -> str:
    return report_triaged(api, client, impact="extensive", urgency="critical")


def reminders(box: Mailbox, person: Person, reference: str) -> list[str]:
    return [
        str(message["Subject"])
        for message in box.to(person.email)
        if REMINDER in str(message["Subject"]) and reference in str(message["Subject"])
    ]


def overdue_entries(api: Api, incident_id: str) -> list[dict[str, Any]]:
    return [entry for entry in api.timeline(api.admin, incident_id) if entry["type"] == OVERDUE]


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["occurred_at"])


def due(entry: dict[str, Any]) -> int:
    """When the overdue update was due, as the entry says it: seconds into the day (UTC)."""
    found = re.search(r"since (\d\d):(\d\d):(\d\d) UTC", entry["summary"])
    assert found, entry["summary"]
    hours, minutes, seconds = (int(part) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def assign(api: Api, by: Tenant, incident_id: str, role: str, person: Person) -> None:
    body = {"role": role, "person_id": person.person_id}
    ok(run(api, by, incident_id, "assign_role", body))


def close_all(api: Api, by: Tenant, *incident_ids: str) -> None:
    """Declines what a test leaves open, so its reminders do not run on through the module."""
    for incident_id in incident_ids:
        if api.incident(api.admin, incident_id)["status"] not in ("resolved", "declined"):
            ok(run(api, by, incident_id, "decline"))


def test_the_cadence_setting_takes_fractions_and_refuses_nonsense_naming_the_variable() -> None:
    settings = Settings.from_environment({"FIREBREAK_UPDATE_CADENCE_MINUTES": "P1=0.1, P3=1440"})
    assert settings.update_cadence == {"P1": 0.1, "P3": 1440.0}
    assert Settings().update_cadence == {"P1": 30.0, "P2": 120.0, "P3": 1440.0}
    for bad in ("P1=0", "P1=-5", "P5=10", "P1=ten", "P1=10,P1=20", "P1", "P1=inf"):
        with pytest.raises(SettingsError, match="FIREBREAK_UPDATE_CADENCE_MINUTES"):
            Settings.from_environment({"FIREBREAK_UPDATE_CADENCE_MINUTES": bad})


def test_no_update_is_expected_of_a_p4_nor_once_the_incident_is_over() -> None:
    cadence = Cadence({"P1": 30.0})
    since = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert cadence.next_due(priority="P1", status="acknowledged", since=since) == since + (
        timedelta(minutes=30)
    )
    assert cadence.next_due(priority="P4", status="acknowledged", since=since) is None
    for status in ("resolved", "closed", "declined", "merged"):
        assert cadence.next_due(priority="P1", status=status, since=since) is None
    assert [spoken(timedelta(minutes=m)) for m in (30, 120, 1440, 0.1)] == [
        "30 minutes",
        "2 hours",
        "1 day",
        "6 seconds",
    ]


@on_backend("sqlite", "cadence_platform")
def test_the_comms_lead_is_reminded_else_the_commander_and_it_is_on_the_timeline(
    cadence_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api, box = Api(cadence_platform), mailbox[0]
    client = api.new_client()
    manager, lead, commander = (
        api.new_person("manager"),
        api.new_person("responder"),
        api.new_person("responder"),
    )
    with_lead, without = p1(api, client), p1(api, client)
    for incident_id in (with_lead, without):
        assign(api, manager, incident_id, "incident_commander", commander)
    assign(api, manager, with_lead, "communications_lead", lead)
    led, commanded = (api.incident(api.admin, i)["reference"] for i in (with_lead, without))

    eventually(lambda: reminders(box, lead, led), timeout=P1_SECONDS * 10)
    eventually(lambda: reminders(box, commander, commanded), timeout=P1_SECONDS * 10)
    # Each went to the first of them the incident has: never both.
    assert not reminders(box, commander, led)
    assert not reminders(box, lead, commanded)
    entry = eventually(lambda: overdue_entries(api, with_lead))[0]
    name = ok(api.http.get(f"/v1/people/{lead.person_id}", headers=api.admin.headers))["name"]
    assert entry["summary"].endswith("reminded 1 person")
    assert said(entry) == [("reminded", name)]
    assert "P1" in entry["summary"] and "after triage" in entry["summary"]
    deliveries = ok(
        api.http.get(f"/v1/incidents/{with_lead}/notifications", headers=manager.headers)
    )["items"]
    assert any(
        item["purpose"] == "update_reminder" and item["target"] == lead.email for item in deliveries
    )
    close_all(api, manager, with_lead, without)


@on_backend("postgresql", "cadence_platform")
def test_without_role_holders_the_managers_inside_the_wall_are_reminded(
    cadence_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api, box = Api(cadence_platform), mailbox[0]
    client, other = api.new_client(), api.new_client("Other LLP")
    inside, outside = api.new_person("manager"), api.new_person("manager", clients=[other.id])
    incident_id = p1(api, client)
    reference = api.incident(api.admin, incident_id)["reference"]
    eventually(lambda: reminders(box, inside, reference), timeout=P1_SECONDS * 10)
    assert not reminders(box, outside, reference)
    close_all(api, inside, incident_id)


@on_backend("postgresql", "cadence_platform")
def test_an_update_postpones_the_next_reminder_and_resolution_stops_them_until_reopened(
    cadence_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api, box = Api(cadence_platform), mailbox[0]
    client = api.new_client()
    manager, lead = api.new_person("manager"), api.new_person("responder")
    incident_id = p1(api, client)
    assign(api, manager, incident_id, "communications_lead", lead)
    reference = api.incident(api.admin, incident_id)["reference"]
    eventually(lambda: reminders(box, lead, reference), timeout=P1_SECONDS * 10)

    posted = ok(
        api.http.post(
            f"/v1/incidents/{incident_id}/updates",
            json={"audience": "internal", "body": "Hosts isolated"},
            headers=lead.headers,
        )
    )
    posted_at = datetime.fromisoformat(posted["posted_at"])
    # The next reminder counts from the update: one interval after it, not before.
    after = eventually(
        lambda: [e for e in overdue_entries(api, incident_id) if at(e) > posted_at],
        timeout=P1_SECONDS * 10,
    )[0]
    assert (at(after) - posted_at).total_seconds() >= P1_SECONDS
    assert "after the last update" in after["summary"]

    bring_to(api, manager, incident_id, "resolved")
    resolved_at = at(
        eventually(
            lambda: [
                e for e in api.timeline(api.admin, incident_id) if e["type"] == "incident.resolved"
            ]
        )[0]
    )
    # Reopened after more than an interval: none fell due while it was resolved (one would
    # have, an interval at most after the last reminder, had resolving not stopped them).
    time.sleep(P1_SECONDS + 1)
    ok(run(api, manager, incident_id, "reopen"))
    reopened_at = at(
        eventually(
            lambda: [
                e for e in api.timeline(api.admin, incident_id) if e["type"] == "incident.reopened"
            ]
        )[0]
    )
    again = eventually(
        lambda: [e for e in overdue_entries(api, incident_id) if at(e) > reopened_at],
        timeout=P1_SECONDS * 10,
    )[0]
    assert (at(again) - reopened_at).total_seconds() >= P1_SECONDS
    # (A reminder already under way as notify took in the resolution may just follow it.)
    quiet_from = resolved_at + timedelta(seconds=1)
    between = [e for e in overdue_entries(api, incident_id) if quiet_from < at(e) < reopened_at]
    assert between == []
    close_all(api, manager, incident_id)


@on_backend("sqlite", "cadence_platform")
def test_reclassification_changes_the_interval(
    cadence_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api = Api(cadence_platform)
    client = api.new_client()
    manager = api.new_person("manager")
    incident_id = p1(api, client)
    ok(run(api, manager, incident_id, "reclassify", {"urgency": "medium", "reason": "Contained"}))
    assert api.incident(api.admin, incident_id)["priority"] == "P2"

    def two() -> list[dict[str, Any]] | None:
        entries = overdue_entries(api, incident_id)
        return entries[:2] if len(entries) >= 2 else None

    first, second = eventually(two, timeout=P2_SECONDS * 10)
    assert "P2" in second["summary"] and "every 6 s" in second["summary"]
    # Each falls due one P2 interval after the one before (when each was sent lags a tick).
    assert (due(second) - due(first)) % 86_400 == P2_SECONDS
    close_all(api, manager, incident_id)


# PostgreSQL only: replicas share a database there, as the chart runs them (a notify killed on
# SQLite is test_deadlines' and test_escalation's, on both).
@on_backend("postgresql", "cadence_platform")
def test_a_notify_killed_mid_wait_still_reminds_once_and_two_replicas_remind_once(
    cadence_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api, box = Api(cadence_platform), mailbox[0]
    client = api.new_client()
    manager, lead = api.new_person("manager"), api.new_person("responder")
    incident_id = p1(api, client)
    assign(api, manager, incident_id, "communications_lead", lead)
    reference = api.incident(api.admin, incident_id)["reference"]
    # Notify knows the lead (role_assigned consumed) before it is killed.
    eventually(lambda: "communications lead" in str(api.timeline(api.admin, incident_id)))

    notify = cadence_platform.processes["notify"]
    notify.kill()  # kill -9: the due time is all that survives, in the database
    notify.wait()
    cadence_platform.start_service("notify")
    cadence_platform.start_service("notify", label="notify-2")
    try:
        eventually(lambda: len(overdue_entries(api, incident_id)) >= 3 or None, timeout=60)
        close_all(api, manager, incident_id)

        # Each reminder is one timeline entry and one email, whichever replica sent it. Both
        # are read again until they agree: a reminder sent as the incident closed may reach the
        # mailbox before review has put it on the timeline, or after.
        def entries_matching_the_mails() -> list[dict[str, Any]] | None:
            entries = overdue_entries(api, incident_id)
            return entries if len(reminders(box, lead, reference)) == len(entries) else None

        entries = eventually(entries_matching_the_mails)
        lines = Counter(entry["summary"] for entry in entries)
        assert all(count == 1 for count in lines.values()), lines
    finally:
        cadence_platform.stop_process("notify-2")
