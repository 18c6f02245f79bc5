"""On-call schedules over HTTP: keeping them, who is on call across daylight-saving changes,
overrides, stale If-Match, who may do what, and what may not be deleted.

Every expected on-call answer is written out by hand. Europe/London springs forward on
2027-03-28 at 01:00 UTC (01:00 GMT -> 02:00 BST) and falls back on 2027-10-31 at 01:00 UTC
(02:00 BST -> 01:00 GMT, so 01:00-02:00 local happens twice).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests.gateway_client import Api, Person
from tests.test_bad_input import assert_problem

PATH = "/v1/schedules"


@dataclass(frozen=True)
class Crew:
    """Responders to put on call (named, to check the names answered), and a manager."""

    ann: Person
    bob: Person
    cat: Person
    dan: Person
    manager: Person


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return Crew(
        ann=api.new_person("responder", name="Ann Avery"),
        bob=api.new_person("responder", name="Bob Brook"),
        cat=api.new_person("responder", name="Cat Cole"),
        dan=api.new_person("manager", name="Dan Dale"),
        manager=api.new_person("manager"),
    )


def utc(text: str) -> datetime:
    """'2027-03-28T08:00' -> that moment in UTC."""
    return datetime.fromisoformat(f"{text}+00:00")


def daily(crew: Crew, starts_at: str, **overrides: Any) -> dict[str, Any]:
    """A layer rotating daily through Ann, Bob and Cat, handing off at 09:00 London time."""
    return {
        "participants": [crew.ann.person_id, crew.bob.person_id, crew.cat.person_id],
        "rotation": "daily",
        "handoff_time": "09:00",
        "starts_at": starts_at,
    } | overrides


def schedule_body(crew: Crew, **overrides: Any) -> dict[str, Any]:
    return {
        "name": f"Platform team {uuid.uuid4().hex[:6]}",
        "timezone": "Europe/London",
        "layers": [daily(crew, "2027-03-26T09:00:00Z")],  # a Friday, 09:00 GMT
        "overrides": [],
    } | overrides


def create(api: Api, crew: Crew, **overrides: Any) -> dict[str, Any]:
    response = api.http.post(PATH, json=schedule_body(crew, **overrides), headers=api.admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def on_call(api: Api, schedule_id: str, at: str) -> dict[str, Any]:
    response = api.http.get(
        f"{PATH}/{schedule_id}/on-call", params={"at": at}, headers=api.admin.headers
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def who(api: Api, schedule_id: str, at: str) -> tuple[str | None, str | None, datetime | None]:
    """(person id, source, until) at `at`."""
    answer = on_call(api, schedule_id, at)
    person = answer["person"]["id"] if answer["person"] else None
    until = datetime.fromisoformat(answer["until"]) if answer["until"] else None
    return person, answer["source"], until


def every_schedule(api: Api) -> list[dict[str, Any]]:
    return api.pages(PATH, api.admin, limit=200)


# --- keeping schedules ------------------------------------------------------------------------


def test_a_manager_creates_reads_lists_changes_and_deletes_a_schedule(api: Api, crew: Crew) -> None:
    body = schedule_body(
        crew,
        layers=[
            daily(crew, "2027-03-26T09:00:00Z"),
            {
                "participants": [crew.dan.person_id],
                "rotation": {"hours": 12},
                "handoff_time": "21:30",
                "starts_at": "2027-04-01T00:00:00+01:00",
            },
        ],
        overrides=[
            {
                "person_id": crew.dan.person_id,
                "from": "2027-03-28T11:00:00+01:00",
                "to": "2027-03-28T12:00:00Z",
            }
        ],
    )
    created = api.http.post(PATH, json=body, headers=crew.manager.headers)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert created.headers["ETag"] == '"1"'
    assert schedule["version"] == 1
    assert schedule["created_at"] == schedule["updated_at"]
    # Given back as taken, times in UTC.
    assert schedule | {"id": "", "created_at": "", "updated_at": ""} == {
        "id": "",
        "name": body["name"],
        "timezone": "Europe/London",
        "layers": [
            {
                "participants": [crew.ann.person_id, crew.bob.person_id, crew.cat.person_id],
                "rotation": "daily",
                "handoff_time": "09:00",
                "starts_at": "2027-03-26T09:00:00Z",
            },
            {
                "participants": [crew.dan.person_id],
                "rotation": {"hours": 12},
                "handoff_time": "21:30",
                "starts_at": "2027-03-31T23:00:00Z",
            },
        ],
        "overrides": [
            {
                "person_id": crew.dan.person_id,
                "from": "2027-03-28T10:00:00Z",
                "to": "2027-03-28T12:00:00Z",
            }
        ],
        "version": 1,
        "created_at": "",
        "updated_at": "",
    }
    path = f"{PATH}/{schedule['id']}"
    read = api.http.get(path, headers=crew.ann.headers)  # any staff reads
    assert read.status_code == 200 and read.json() == schedule
    assert read.headers["ETag"] == '"1"'
    assert schedule in api.pages(PATH, crew.ann, limit=200)

    renamed = api.http.patch(path, json={"name": "Renamed rota"}, headers=crew.manager.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.headers["ETag"] == '"2"'
    assert renamed.json() | {"updated_at": ""} == schedule | {
        "name": "Renamed rota",
        "version": 2,
        "updated_at": "",
    }
    assert renamed.json()["updated_at"] > schedule["updated_at"]

    # Fields given replace the schedule's whole: one layer now, no overrides.
    replaced = api.http.patch(
        path,
        json={"layers": [daily(crew, "2027-03-26T09:00:00Z")], "overrides": []},
        headers=api.admin.headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["layers"] == schedule["layers"][:1]
    assert replaced.json()["overrides"] == []
    assert (replaced.json()["name"], replaced.json()["version"]) == ("Renamed rota", 3)
    assert api.http.get(path, headers=api.admin.headers).json() == replaced.json()

    deleted = api.http.delete(path, headers=crew.manager.headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(api.http.get(path, headers=api.admin.headers), 404)
    assert_problem(api.http.delete(path, headers=api.admin.headers), 404)
    assert schedule["id"] not in {item["id"] for item in api.pages(PATH, api.admin, limit=200)}


def test_schedules_are_listed_newest_first_in_pages(api: Api, crew: Crew) -> None:
    made = [create(api, crew)["id"] for _ in range(3)]
    listed = [item["id"] for item in api.pages(PATH, api.admin, limit=1)]
    assert [schedule_id for schedule_id in listed if schedule_id in made] == made[::-1]
    assert "default" in listed
    bad = api.http.get(PATH, params={"cursor": "nonsense"}, headers=api.admin.headers)
    assert_problem(bad, 422, "cursor")
    assert_problem(api.http.get(PATH, params={"limit": 0}, headers=api.admin.headers), 422, "limit")


def test_unknown_schedules_are_404(api: Api) -> None:
    for schedule_id in (str(uuid.uuid4()), "not%20an%20id", "%00"):
        path = f"{PATH}/{schedule_id}"
        assert_problem(api.http.get(path, headers=api.admin.headers), 404)
        assert_problem(api.http.patch(path, json={"name": "x"}, headers=api.admin.headers), 404)
        assert_problem(api.http.delete(path, headers=api.admin.headers), 404)
        assert_problem(api.http.get(f"{path}/on-call", headers=api.admin.headers), 404)


def test_the_default_schedule_exists_empty_can_be_edited_and_not_deleted(
    api: Api, crew: Crew
) -> None:
    path = f"{PATH}/default"
    default = api.http.get(path, headers=crew.ann.headers)
    assert default.status_code == 200, default.text
    assert default.json()["id"] == "default"
    before = default.json()
    nobody = on_call(api, "default", "2027-03-28T12:00:00Z")
    if not before["layers"] and not before["overrides"]:  # as shipped (another test may edit)
        assert nobody == {
            "schedule_id": "default",
            "at": "2027-03-28T12:00:00Z",
            "person": None,
            "source": None,
            "until": None,
        }

    edited = api.http.patch(
        path,
        json={"layers": [daily(crew, "2027-03-26T09:00:00Z")]},
        # The version read, so that this cannot overwrite someone else's change unseen.
        headers={**crew.manager.headers, "If-Match": default.headers["ETag"]},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == before["version"] + 1
    assert who(api, "default", "2027-03-28T12:00:00Z")[0] == crew.cat.person_id

    refused = api.http.delete(path, headers=api.admin.headers)
    assert "default" in assert_problem(refused, 409)["detail"]

    # Back as it was, empty (the shipped escalation policies page this schedule): no layers is
    # a valid schedule, with nobody on call.
    restored = api.http.patch(
        path,
        json={"layers": before["layers"], "overrides": before["overrides"]},
        headers={**api.admin.headers, "If-Match": edited.headers["ETag"]},
    )
    assert restored.status_code == 200, restored.text
    assert restored.json()["layers"] == before["layers"]
    assert api.http.get(path, headers=api.admin.headers).status_code == 200


def test_a_schedule_without_layers_is_valid_and_has_nobody_on_call(api: Api, crew: Crew) -> None:
    schedule = create(api, crew, layers=[])
    assert schedule["layers"] == []
    assert who(api, schedule["id"], "2027-03-28T12:00:00Z") == (None, None, None)


# --- validation -------------------------------------------------------------------------------


def _layer_case(**changes: Any) -> dict[str, Any]:
    return {"layer": changes}


# (what to change in the body, the field the 422 names). A "layer" change is merged into the
# schedule's first layer; "person" cases name someone who may not be on call.
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "../etc/passwd"}, "timezone"),
    ({"layers": "daily"}, "layers"),
    ({"colour": "red"}, "colour"),  # a misspelt field is not silently dropped
    (_layer_case(handoff_time="25:00"), "layers.0.handoff_time"),
    (_layer_case(handoff_time="9am"), "layers.0.handoff_time"),
    (_layer_case(rotation="monthly"), "layers.0.rotation"),
    (_layer_case(rotation={"hours": -1}), "layers.0.rotation"),
    (_layer_case(rotation={"hours": 1000}), "layers.0.rotation.hours"),  # four weeks at most
    (_layer_case(participants=[]), "layers.0.participants"),
    (_layer_case(participants=["bad id!"]), "layers.0.participants.0"),
    (_layer_case(starts_at="2027-03-26T09:00:00"), "layers.0.starts_at"),  # no offset
    (_layer_case(starts_at="1900-01-01T09:00:00Z"), "layers.0.starts_at"),
    (_layer_case(starts_at="9999-12-31T23:00:00-05:00"), "layers.0.starts_at"),
    (
        {
            "overrides": [
                {"person_id": "ANN", "from": "2027-03-28T10:00:00Z", "to": "2027-03-28T11:00:00Z"},
                {"person_id": "ANN", "from": "2027-03-28T10:00:00Z", "to": "2027-03-28T10:00:00Z"},
            ]
        },
        "overrides.1.to",
    ),
    ({"overrides": [{"person_id": "ANN", "to": "2027-03-28T11:00:00Z"}]}, "overrides.0.from"),
    (
        {
            "overrides": [
                {
                    "person_id": "nobody",
                    "from": "2027-03-28T10:00:00Z",
                    "to": "2027-03-28T11:00:00Z",
                }
            ]
        },
        "overrides.0.person_id",
    ),
    (_layer_case(participants=["ANN", "nobody-at-all"]), "layers.0.participants.1"),
    (_layer_case(participants=["ANN", "ANN", "CONTACT"]), "layers.0.participants.2"),
    (_layer_case(participants=["DEACTIVATED"]), "layers.0.participants.0"),
]


@pytest.fixture(scope="module")
def placeholders(api: Api, crew: Crew) -> dict[str, str]:
    """The people INVALID names by placeholder: staff, a client's contact, someone deactivated."""
    client = api.new_client()
    contact = api.new_person("client", client_id=client.id)
    gone = api.new_person("responder")
    off = api.http.patch(
        f"/v1/people/{gone.person_id}", json={"active": False}, headers=api.admin.headers
    )
    assert off.status_code == 200, off.text
    return {"ANN": crew.ann.person_id, "CONTACT": contact.person_id, "DEACTIVATED": gone.person_id}


def _invalid_body(
    crew: Crew, placeholders: dict[str, str], changes: dict[str, Any]
) -> dict[str, Any]:
    """A schedule body with `changes` made, people named by placeholder filled in."""

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return placeholders.get(value, value)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    changes = fill(changes)
    body = schedule_body(crew)
    if "layer" in changes:
        body["layers"] = [body["layers"][0] | changes.pop("layer")]
    return body | changes


@pytest.mark.parametrize(("changes", "field"), INVALID, ids=[field for _, field in INVALID])
def test_invalid_schedules_are_422_naming_the_field_and_write_nothing(
    api: Api, crew: Crew, placeholders: dict[str, str], changes: dict[str, Any], field: str
) -> None:
    body = _invalid_body(crew, placeholders, changes)
    before = every_schedule(api)
    created = api.http.post(PATH, json=body, headers=api.admin.headers)
    assert_problem(created, 422, field)
    assert every_schedule(api) == before

    schedule = create(api, crew)
    path = f"{PATH}/{schedule['id']}"
    fields = {key: value for key, value in body.items() if key in changes or key == "layers"}
    if "layer" not in changes and "layers" not in changes:
        fields.pop("layers")
    changed = api.http.patch(path, json=fields, headers=api.admin.headers)
    assert_problem(changed, 422, field)
    assert api.http.get(path, headers=api.admin.headers).json() == schedule


def test_on_call_needs_an_aware_time(api: Api, crew: Crew) -> None:
    schedule = create(api, crew)
    path = f"{PATH}/{schedule['id']}/on-call"
    for at in (
        "2027-03-28T09:00:00",  # no offset
        "yesterday",
        "2027-02-30T09:00:00Z",
        "9999-12-31T23:00:00Z",
        "0001-01-01T00:00:00+01:00",
    ):
        response = api.http.get(path, params={"at": at}, headers=api.admin.headers)
        assert_problem(response, 422, "at")


# --- who is on call ---------------------------------------------------------------------------


def test_handoffs_stay_at_nine_in_london_across_the_spring_forward_night(
    api: Api, crew: Crew
) -> None:
    # Ann from Friday 26 March 09:00 GMT (09:00Z), Bob from Saturday 09:00 GMT (09:00Z), Cat
    # from Sunday 09:00 BST (08:00Z): Bob's shift across the night the clocks go forward lasts
    # 23 hours. Counting 24-hour days would hand over to Cat at 10:00 BST instead.
    schedule_id = create(api, crew)["id"]
    ann, bob, cat = crew.ann.person_id, crew.bob.person_id, crew.cat.person_id
    assert who(api, schedule_id, "2027-03-26T08:59:59Z") == (None, None, utc("2027-03-26T09:00"))
    assert who(api, schedule_id, "2027-03-26T09:00:00Z") == (
        ann,
        "layer 0",
        utc("2027-03-27T09:00"),
    )
    bobs_turn = (bob, "layer 0", utc("2027-03-28T08:00"))
    assert who(api, schedule_id, "2027-03-27T09:00:00Z") == bobs_turn
    assert who(api, schedule_id, "2027-03-28T00:59:59Z") == bobs_turn  # 00:59:59 GMT
    assert who(api, schedule_id, "2027-03-28T01:00:00Z") == bobs_turn  # 02:00 BST
    assert who(api, schedule_id, "2027-03-28T08:59:59+01:00") == bobs_turn
    cats_turn = (cat, "layer 0", utc("2027-03-29T08:00"))
    assert who(api, schedule_id, "2027-03-28T09:00:00+01:00") == cats_turn
    assert who(api, schedule_id, "2027-03-28T09:30:00Z") == cats_turn  # 10:30 BST
    assert who(api, schedule_id, "2027-03-29T07:59:59Z") == cats_turn
    assert who(api, schedule_id, "2027-03-29T08:00:00Z") == (
        ann,
        "layer 0",
        utc("2027-03-30T08:00"),
    )
    # The whole answer: the time asked about in UTC, and who by name.
    assert on_call(api, schedule_id, "2027-03-28T09:00:00+01:00") == {
        "schedule_id": schedule_id,
        "at": "2027-03-28T08:00:00Z",
        "person": {"id": cat, "name": "Cat Cole"},
        "source": "layer 0",
        "until": "2027-03-29T08:00:00Z",
    }


def test_handoffs_stay_at_nine_in_london_across_the_fall_back_night(api: Api, crew: Crew) -> None:
    # Ann from Friday 29 October 09:00 BST (08:00Z), Bob from Saturday 09:00 BST (08:00Z), Cat
    # from Sunday 09:00 GMT (09:00Z): Bob's shift across the night the clocks go back lasts
    # 25 hours, through both 01:30s.
    schedule_id = create(api, crew, layers=[daily(crew, "2027-10-29T09:00:00+01:00")])["id"]
    ann, bob, cat = crew.ann.person_id, crew.bob.person_id, crew.cat.person_id
    assert who(api, schedule_id, "2027-10-29T08:00:00Z") == (
        ann,
        "layer 0",
        utc("2027-10-30T08:00"),
    )
    bobs_turn = (bob, "layer 0", utc("2027-10-31T09:00"))
    assert who(api, schedule_id, "2027-10-30T08:00:00Z") == bobs_turn
    assert who(api, schedule_id, "2027-10-31T01:30:00+01:00") == bobs_turn  # the first 01:30
    assert who(api, schedule_id, "2027-10-31T01:30:00+00:00") == bobs_turn  # the second
    assert who(api, schedule_id, "2027-10-31T08:00:00Z") == bobs_turn  # 08:00 GMT
    assert who(api, schedule_id, "2027-10-31T08:59:59Z") == bobs_turn
    cats_turn = (cat, "layer 0", utc("2027-11-01T09:00"))
    assert who(api, schedule_id, "2027-10-31T09:00:00Z") == cats_turn
    assert who(api, schedule_id, "2027-11-01T08:59:59Z") == cats_turn


def test_an_override_wins_over_the_rotation(api: Api, crew: Crew) -> None:
    dan, cat = crew.dan.person_id, crew.cat.person_id
    schedule_id = create(
        api,
        crew,
        overrides=[
            # Dan covers Cat's Sunday morning, 11:00-13:00 BST.
            {"person_id": dan, "from": "2027-03-28T11:00:00+01:00", "to": "2027-03-28T12:00:00Z"}
        ],
    )["id"]
    assert who(api, schedule_id, "2027-03-28T09:59:59Z") == (
        cat,
        "layer 0",
        utc("2027-03-28T10:00"),
    )
    assert on_call(api, schedule_id, "2027-03-28T10:00:00Z") == {
        "schedule_id": schedule_id,
        "at": "2027-03-28T10:00:00Z",
        "person": {"id": dan, "name": "Dan Dale"},
        "source": "override",
        "until": "2027-03-28T12:00:00Z",
    }
    assert who(api, schedule_id, "2027-03-28T11:59:59Z") == (
        dan,
        "override",
        utc("2027-03-28T12:00"),
    )
    assert who(api, schedule_id, "2027-03-28T12:00:00Z") == (
        cat,
        "layer 0",
        utc("2027-03-29T08:00"),
    )


def test_on_call_now_by_default(api: Api, crew: Crew) -> None:
    schedule_id = create(api, crew, layers=[daily(crew, "2020-01-01T09:00:00Z")])["id"]
    before = datetime.now().astimezone()
    answer = api.http.get(f"{PATH}/{schedule_id}/on-call", headers=crew.ann.headers)
    assert answer.status_code == 200, answer.text
    assert before <= datetime.fromisoformat(answer.json()["at"]) <= datetime.now().astimezone()
    assert answer.json()["person"]["id"] in {
        crew.ann.person_id,
        crew.bob.person_id,
        crew.cat.person_id,
    }


# --- concurrency, permissions, what may not be deleted ----------------------------------------


def test_a_stale_if_match_is_412_and_changes_nothing(api: Api, crew: Crew) -> None:
    schedule = create(api, crew)
    path = f"{PATH}/{schedule['id']}"
    first = api.http.patch(
        path, json={"name": "First"}, headers={**crew.manager.headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == '"2"'
    stale = api.http.patch(
        path, json={"name": "Second"}, headers={**api.admin.headers, "If-Match": '"1"'}
    )
    problem = assert_problem(stale, 412)
    assert "version 2" in problem["detail"]
    assert stale.headers["ETag"] == '"2"'
    assert api.http.get(path, headers=api.admin.headers).json() == first.json()
    nothing = api.http.patch(path, json={}, headers={**api.admin.headers, "If-Match": '"1"'})
    assert_problem(nothing, 412)
    unchanged = api.http.patch(path, json={}, headers=api.admin.headers)
    assert unchanged.status_code == 200 and unchanged.json() == first.json()  # no new version
    garbled = api.http.patch(
        path, json={"name": "Third"}, headers={**api.admin.headers, "If-Match": "two"}
    )
    assert_problem(garbled, 400)
    current = api.http.patch(
        path, json={"name": "Third"}, headers={**api.admin.headers, "If-Match": '"2"'}
    )
    assert current.status_code == 200 and current.json()["version"] == 3


def test_staff_read_schedules_and_only_managers_and_admins_change_them(
    api: Api, crew: Crew
) -> None:
    schedule = create(api, crew)
    path = f"{PATH}/{schedule['id']}"
    client = api.new_client()
    contact = api.new_person("client", client_id=client.id)
    responder = api.new_person("responder", clients=[])  # walled off every client: still staff
    reads = [(PATH, {}), (path, {}), (f"{path}/on-call", {"at": "2027-03-28T12:00:00Z"})]
    for url, params in reads:
        assert api.http.get(url, params=params, headers=responder.headers).status_code == 200
        for outsider in (client, contact):
            assert_problem(api.http.get(url, params=params, headers=outsider.headers), 403)
        assert_problem(api.http.get(url, params=params), 401)
    for caller in (responder, client, contact):
        assert_problem(api.http.post(PATH, json=schedule_body(crew), headers=caller.headers), 403)
        assert_problem(api.http.patch(path, json={"name": "x"}, headers=caller.headers), 403)
        assert_problem(api.http.delete(path, headers=caller.headers), 403)
    assert api.http.get(path, headers=api.admin.headers).json() == schedule
    admin = api.new_person("admin")
    assert api.http.delete(path, headers=admin.headers).status_code == 204


def test_a_schedule_an_escalation_policy_pages_cannot_be_deleted(api: Api, crew: Crew) -> None:
    schedule = create(api, crew)
    path = f"{PATH}/{schedule['id']}"
    client = api.new_client()  # a client's own policy, so it clashes with no firm default
    policy = api.http.post(
        "/v1/escalation-policies",
        json={
            "name": "Gamma out of hours",
            "steps": [{"targets": [{"schedule_id": schedule["id"]}], "after_minutes": 5}],
            "repeat": 0,
            "client_id": client.id,
            "priorities": ["P4"],
            "page": False,
        },
        headers=api.admin.headers,
    )
    assert policy.status_code == 201, policy.text

    refused = api.http.delete(path, headers=api.admin.headers)
    detail = assert_problem(refused, 409)["detail"]
    assert "Gamma out of hours" in detail and policy.json()["id"] in detail
    assert api.http.get(path, headers=api.admin.headers).json() == schedule

    gone = api.http.delete(
        f"/v1/escalation-policies/{policy.json()['id']}", headers=api.admin.headers
    )
    assert gone.status_code == 204, gone.text
    assert api.http.delete(path, headers=api.admin.headers).status_code == 204
