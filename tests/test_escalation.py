"""Escalation against the real processes and a real SMTP server: the on-call person is paged,
the next step follows when no one acknowledges, the fallback when the policy runs out, an
acknowledgement stops it, and a notify killed mid-escalation still fires its next step once."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from firebreak.launcher import Platform
from tests.conftest import BACKENDS, database_urls, on_backend, start_platform
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok, run
from tests.mail import Mailbox, start_paging_platform
from tests.review_client import said

STEP_SECONDS = 3.0  # a policy step of a few seconds: tests never wait minutes
LAPSE_SECONDS = 4.0


@pytest.fixture(scope="module", params=BACKENDS)
def paging_platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: tuple[Mailbox, int],
) -> Iterator[Platform]:
    factory = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    _, port = mailbox
    platform = start_paging_platform(
        tmp_path_factory.mktemp(f"paging-{request.param}"),
        smtp_port=port,
        database_urls=database_urls(request.param, factory),
        # An acknowledged P1 without progress pages again after a few seconds.
        extra_env={"FIREBREAK_ACK_LAPSE_MINUTES": str(LAPSE_SECONDS / 60)},
    )
    yield platform
    platform.stop()


def _policy(api: Api, client: Tenant, steps: list[dict[str, Any]], **fields: Any) -> str:
    body = {"name": "Acme P1", "client_id": client.id, "priorities": ["P1"], "steps": steps}
    response = api.http.post(
        "/v1/escalation-policies", json=body | fields, headers=api.admin.headers
    )
    return str(ok(response)["id"])


def _schedule(api: Api, on_call: Person) -> str:
    body = {
        "name": "Primary",
        "timezone": "Europe/London",
        "layers": [
            {
                "participants": [on_call.person_id],
                "rotation": "weekly",
                "handoff_time": "09:00",
                "starts_at": "2026-01-05T09:00:00+00:00",
            }
        ],
        "overrides": [],
    }
    return str(ok(api.http.post("/v1/schedules", json=body, headers=api.admin.headers))["id"])


def _subjects(box: Mailbox, person: Person) -> list[str]:
    return [str(message["Subject"]) for message in box.to(person.email)]


def _all_delivered(api: Api, incident_id: str) -> bool:
    response = api.http.get(f"/v1/incidents/{incident_id}/notifications", headers=api.admin.headers)
    items = response.json().get("items", []) if response.status_code == 200 else []
    return bool(items) and all(item["status"] == "delivered" for item in items)


def _timeline_types(api: Api, incident_id: str) -> list[str]:
    return [entry["type"] for entry in api.timeline(api.admin, incident_id)]


@on_backend("postgresql", "paging_platform")
def test_a_p1_pages_on_call_escalates_then_stops_when_acknowledged(
    paging_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api = Api(paging_platform)
    box, _ = mailbox
    client = api.new_client()
    on_call, second, manager = (
        api.new_person("responder"),
        api.new_person("responder"),
        api.new_person("manager"),
    )
    schedule = _schedule(api, on_call)
    minutes = STEP_SECONDS / 60
    _policy(
        api,
        client,
        [
            {"targets": [{"schedule_id": schedule}], "after_minutes": minutes},
            {"targets": [{"person_id": second.person_id}], "after_minutes": 30},
        ],
    )
    created = ok(api.report(client, impact="extensive", urgency="critical"))
    reference = created["reference"]

    # Step 1 at once: the on-call responder, by email, naming the incident and its priority.
    subject = eventually(lambda: _subjects(box, on_call))[0]
    assert reference in subject and "[P1]" in subject
    assert not _subjects(box, second)
    # No one acknowledged within the step's time: step 2 pages the second responder as well.
    eventually(lambda: _subjects(box, second), timeout=STEP_SECONDS * 10)

    ok(run(api, manager, created["id"], "acknowledge"))
    stopped = eventually(
        lambda: "escalation.stopped" in _timeline_types(api, created["id"]) or None
    )
    assert stopped
    types = _timeline_types(api, created["id"])
    assert types.count("escalation.step_reached") == 2
    assert types.count("page.delivered") == 2
    # Nothing more is sent once it stopped (the second step waits 30 minutes anyway; the
    # fallback would have come after it).
    assert len(box.to(manager.email)) == 0


@on_backend("sqlite", "paging_platform")
def test_a_policy_that_runs_out_pages_the_firms_managers(
    paging_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api = Api(paging_platform)
    box, _ = mailbox
    client = api.new_client()
    responder, manager = api.new_person("responder"), api.new_person("manager")
    _policy(
        api,
        client,
        [{"targets": [{"person_id": responder.person_id}], "after_minutes": STEP_SECONDS / 60}],
    )
    created = ok(api.report(client, impact="extensive", urgency="critical"))
    eventually(lambda: _subjects(box, responder))
    eventually(lambda: _subjects(box, manager), timeout=STEP_SECONDS * 10)
    summaries = [entry["summary"] for entry in api.timeline(api.admin, created["id"])]
    assert any("fallback" in summary for summary in summaries)


def test_a_notify_killed_mid_escalation_still_fires_the_next_step_once(
    paging_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api = Api(paging_platform)
    box, _ = mailbox
    client = api.new_client()
    first, second = api.new_person("responder"), api.new_person("responder")
    _policy(
        api,
        client,
        [
            {"targets": [{"person_id": first.person_id}], "after_minutes": STEP_SECONDS / 60},
            {"targets": [{"person_id": second.person_id}], "after_minutes": 30},
        ],
    )
    ok(api.report(client, impact="extensive", urgency="critical"))
    eventually(lambda: _subjects(box, first))

    notify = paging_platform.processes["notify"]
    notify.kill()  # kill -9: the timer's due time is all that survives, in the database
    notify.wait()
    paging_platform.start_service("notify")

    eventually(lambda: _subjects(box, second), timeout=STEP_SECONDS * 10)
    # Once: the second step fired once, and the first page was not sent again.
    eventually(lambda: len(_subjects(box, second)) == 1 or None)
    assert len(_subjects(box, first)) == 1
    assert len(_subjects(box, second)) == 1


def test_pages_without_an_smtp_server_fail_and_say_so(tmp_path: Path) -> None:
    """Not configured is not silent: each page is recorded failed, on the timeline."""
    platform = start_platform(tmp_path, extra_env={"FIREBREAK_PAGING_TICK_SECONDS": "0.1"})
    try:
        api = Api(platform)
        client = api.new_client()
        responder = api.new_person("responder")
        _policy(
            api, client, [{"targets": [{"person_id": responder.person_id}], "after_minutes": 30}]
        )
        created = ok(api.report(client, impact="extensive", urgency="critical"))
        failed = eventually(
            lambda: [
                e for e in api.timeline(api.admin, created["id"]) if e["type"] == "page.failed"
            ]
        )
        (error,) = [value for name, value in said(failed[0]) if name == "error"]
        assert "FIREBREAK_SMTP_HOST" in error
    finally:
        platform.stop()


@on_backend("sqlite", "paging_platform")
def test_an_acknowledged_p1_without_progress_pages_again_and_containment_stops_it(
    paging_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api = Api(paging_platform)
    box, _ = mailbox
    client = api.new_client()
    on_call, manager = api.new_person("responder"), api.new_person("manager")
    _policy(api, client, [{"targets": [{"person_id": on_call.person_id}], "after_minutes": 30}])
    lapsing = ok(api.report(client, impact="extensive", urgency="critical"))
    contained = ok(api.report(client, impact="extensive", urgency="critical"))
    eventually(lambda: len(_subjects(box, on_call)) == 2 or None)
    for incident in (lapsing, contained):
        ok(run(api, manager, incident["id"], "acknowledge"))
    # Containment is progress: that escalation stops for good.
    tasks = api.http.get(f"/v1/incidents/{contained['id']}/tasks", headers=manager.headers).json()[
        "items"
    ]
    for task in tasks:
        if task["required"] and task["phase"] == "containment":
            ok(
                api.http.patch(
                    f"/v1/incidents/{contained['id']}/tasks/{task['id']}",
                    json={"status": "done"},
                    headers=manager.headers,
                )
            )
    ok(run(api, manager, contained["id"], "contain"))

    # The other, acknowledged but not contained, pages its on-call person again.
    def paged_again() -> list[str] | None:
        again = [s for s in _subjects(box, on_call) if lapsing["reference"] in s]
        return again if len(again) == 2 else None

    eventually(paged_again, timeout=LAPSE_SECONDS * 10)
    summaries = [e["summary"] for e in api.timeline(api.admin, lapsing["id"])]
    assert any("acknowledgement lapsed without progress" in line for line in summaries)
    stops = [e["summary"] for e in api.timeline(api.admin, contained["id"])]
    assert any(line == "escalation stopped: contained" for line in stops)
    assert [s for s in _subjects(box, on_call) if contained["reference"] in s] == [
        next(s for s in _subjects(box, on_call) if contained["reference"] in s)
    ]


def test_two_notify_replicas_send_each_page_once(
    paging_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api = Api(paging_platform)
    box, _ = mailbox
    client = api.new_client()
    on_call = api.new_person("responder")
    _policy(api, client, [{"targets": [{"person_id": on_call.person_id}], "after_minutes": 30}])
    paging_platform.start_service("notify", label="notify-2")
    try:
        incidents = [
            ok(api.report(client, impact="extensive", urgency="critical")) for _ in range(12)
        ]
        # Every page recorded delivered: a replica records after sending, so a copy sent by
        # the other one would have reached the SMTP server by then.
        for incident in incidents:
            eventually(partial(_all_delivered, api, incident["id"]))
        subjects = _subjects(box, on_call)
        for incident in incidents:
            assert sum(incident["reference"] in subject for subject in subjects) == 1
    finally:
        paging_platform.stop_process("notify-2")


def test_a_named_person_who_cannot_be_paged_is_said_not_silently_skipped(
    paging_platform: Platform, mailbox: tuple[Mailbox, int]
) -> None:
    api = Api(paging_platform)
    box, _ = mailbox
    client = api.new_client()
    gone, there = api.new_person("responder"), api.new_person("responder")
    targets = [{"person_id": gone.person_id}, {"person_id": there.person_id}]
    _policy(api, client, [{"targets": targets, "after_minutes": 30}])
    ok(
        api.http.patch(
            f"/v1/people/{gone.person_id}", json={"active": False}, headers=api.admin.headers
        )
    )
    created = ok(api.report(client, impact="extensive", urgency="critical"))
    eventually(lambda: _subjects(box, there))

    def step_entry() -> dict[str, Any] | None:
        steps = [
            e
            for e in api.timeline(api.admin, created["id"])
            if e["type"] == "escalation.step_reached"
        ]
        return steps[0] if steps else None

    step = eventually(step_entry)
    name = api.http.get(f"/v1/people/{gone.person_id}", headers=api.admin.headers).json()["name"]
    assert "1 person not paged (deactivated or unknown)" in step["summary"]
    assert ("not_paged", name) in said(step)
    assert not _subjects(box, gone)
