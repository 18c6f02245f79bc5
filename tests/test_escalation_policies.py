"""Escalation policies: keeping them over HTTP (validation, ambiguity, If-Match, who may), the
shipped defaults, and choosing the policy for an incident (`policy_for`, on a real database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import create_engine
from firebreak.errors import InvalidArgument
from firebreak.migrations import migrate
from services.notify import policies
from services.notify.models import escalation_policies, schedules
from services.notify.policies import AmbiguousPolicy, PolicyFields, StalePolicy, policy_for
from tests.gateway_client import Api, Tenant
from tests.test_bad_input import assert_problem

PATH = "/v1/escalation-policies"
DEFAULT_SCHEDULE = [{"targets": [{"schedule_id": "default"}], "after_minutes": 0.5}]


def policy_body(client_id: str | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Out of hours",
        "steps": DEFAULT_SCHEDULE,
        "repeat": 1,
        "priorities": ["P1"],
    }
    if client_id is not None:
        body["client_id"] = client_id
    return body | overrides


def create(api: Api, body: dict[str, Any], caller: Tenant | None = None) -> dict[str, Any]:
    response = api.http.post(PATH, json=body, headers=(caller or api.admin).headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    return api.pages(PATH, api.admin, limit=200, **params)


def get(api: Api, policy_id: str) -> dict[str, Any]:
    response = api.http.get(f"{PATH}/{policy_id}", headers=api.admin.headers)
    assert response.status_code == 200, response.text
    policy: dict[str, Any] = response.json()
    return policy


# --- Over HTTP --------------------------------------------------------------------------------


def test_a_manager_creates_reads_lists_changes_and_deletes_a_policy(api: Api) -> None:
    client = api.new_client("Alpha LLP")
    manager, responder = api.new_person("manager"), api.new_person("responder")
    body = policy_body(
        client.id,
        name="Alpha: page the team",
        steps=[
            {"targets": [{"person_id": responder.person_id}], "after_minutes": 0.25},
            {
                "targets": [{"schedule_id": "default"}, {"person_id": manager.person_id}],
                "after_minutes": 10080,
            },
        ],
        repeat=2,
        priorities=["P2", "P1"],
        page=False,
    )
    response = api.http.post(PATH, json=body, headers=manager.headers)
    assert response.status_code == 201, response.text
    policy = response.json()
    assert response.headers["ETag"] == '"1"'
    assert policy | {"id": "", "created_at": "", "updated_at": ""} == {
        "id": "",
        "name": "Alpha: page the team",
        "client_id": client.id,
        "priorities": ["P1", "P2"],  # kept in order of priority
        "page": False,
        "steps": [
            {
                "targets": [{"person_id": responder.person_id, "schedule_id": None}],
                "after_minutes": 0.25,
            },
            {
                "targets": [
                    {"person_id": None, "schedule_id": "default"},
                    {"person_id": manager.person_id, "schedule_id": None},
                ],
                "after_minutes": 10080,
            },
        ],
        "repeat": 2,
        "version": 1,
        "created_at": "",
        "updated_at": "",
    }
    assert policy["created_at"] == policy["updated_at"]
    read = api.http.get(f"{PATH}/{policy['id']}", headers=responder.headers)
    assert read.status_code == 200 and read.json() == policy
    assert read.headers["ETag"] == '"1"'
    assert [item["id"] for item in listed(api, client_id=client.id)] == [policy["id"]]
    assert policy["id"] in {item["id"] for item in listed(api)}

    # What is returned goes back as it came: the steps as read are a valid PATCH.
    changed = api.http.patch(
        f"{PATH}/{policy['id']}",
        json={"steps": policy["steps"][:1], "page": True, "name": "Alpha: responder only"},
        headers=manager.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"2"'
    assert changed.json() | {"updated_at": ""} == policy | {
        "steps": policy["steps"][:1],
        "page": True,
        "name": "Alpha: responder only",
        "version": 2,
        "updated_at": "",
    }
    assert changed.json()["updated_at"] > policy["updated_at"]
    assert get(api, policy["id"]) == changed.json()

    gone = api.http.delete(f"{PATH}/{policy['id']}", headers=manager.headers)
    assert gone.status_code == 204 and gone.content == b""
    assert_problem(api.http.get(f"{PATH}/{policy['id']}", headers=api.admin.headers), 404)
    assert_problem(api.http.delete(f"{PATH}/{policy['id']}", headers=api.admin.headers), 404)
    assert listed(api, client_id=client.id) == []


def test_the_shipped_defaults_are_listed(api: Api) -> None:
    by_id = {policy["id"]: policy for policy in listed(api)}
    on_call = {"person_id": None, "schedule_id": "default"}
    urgent, routine = by_id["default-p1-p2"], by_id["default-p3-p4"]
    assert urgent["client_id"] is None and routine["client_id"] is None
    assert (urgent["priorities"], urgent["page"], urgent["repeat"]) == (["P1", "P2"], True, 0)
    # Paged at once, again at +5 and +15 minutes (each step's wait runs to the next).
    assert urgent["steps"] == [
        {"targets": [on_call], "after_minutes": 5},
        {"targets": [on_call], "after_minutes": 10},
        {"targets": [on_call], "after_minutes": 15},
    ]
    assert (routine["priorities"], routine["page"]) == (["P3", "P4"], False)
    assert routine["steps"] == [{"targets": [on_call], "after_minutes": 0}]
    assert get(api, "default-p1-p2") == urgent


STEP = {"targets": [{"schedule_id": "default"}], "after_minutes": 1}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"steps": []}, "steps"),
        ({"steps": [STEP] * 21}, "steps"),
        ({"steps": "every manager"}, "steps"),
        ({"steps": [{"targets": [], "after_minutes": 0}]}, "steps.0.targets"),
        (
            {"steps": [{"targets": [{"schedule_id": "default"}] * 21, "after_minutes": 0}]},
            "steps.0.targets",
        ),
        ({"steps": [STEP, {"targets": [{}], "after_minutes": 0}]}, "steps.1.targets.0"),
        (
            {
                "steps": [
                    {"targets": [{"schedule_id": "default", "person_id": "p"}], "after_minutes": 0}
                ]
            },
            "steps.0.targets.0",
        ),
        (
            {"steps": [{"targets": [{"person_id": "not an id!"}], "after_minutes": 0}]},
            "steps.0.targets.0.person_id",
        ),
        (
            {"steps": [{"targets": [{"schedule_id": "x\u0000"}], "after_minutes": 0}]},
            "steps.0.targets.0.schedule_id",
        ),
        (
            {"steps": [{"targets": [{"team_id": "t"}], "after_minutes": 0}]},
            "steps.0.targets.0.team_id",
        ),
        ({"steps": [{"targets": [{"schedule_id": "default"}]}]}, "steps.0.after_minutes"),
        (
            {"steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": -1}]},
            "steps.0.after_minutes",
        ),
        (
            {"steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": 10080.5}]},
            "steps.0.after_minutes",
        ),
        (
            {"steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": "5"}]},
            "steps.0.after_minutes",
        ),
        (
            {"steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": True}]},
            "steps.0.after_minutes",
        ),
        ({"repeat": -1}, "repeat"),
        ({"repeat": 11}, "repeat"),
        ({"repeat": 1.5}, "repeat"),
        ({"repeat": None}, "repeat"),
        ({"priorities": []}, "priorities"),
        ({"priorities": ["P5"]}, "priorities.0"),
        ({"priorities": ["P1", "P1"]}, "priorities"),
        ({"priorities": "P1"}, "priorities"),
        ({"page": "yes"}, "page"),
        ({"client_id": "not a client!"}, "client_id"),
        ({"nickname": "Night shift"}, "nickname"),  # a misspelt field is not silently dropped
    ],
)
def test_invalid_policies_are_422_naming_the_field_and_write_nothing(
    api: Api, overrides: dict[str, Any], field: str
) -> None:
    before = listed(api)
    client = api.new_client()
    body = policy_body(client.id) | overrides
    assert_problem(api.http.post(PATH, json=body, headers=api.admin.headers), 422, field)
    assert listed(api) == before


@pytest.mark.parametrize("missing", ["name", "steps", "priorities"])
def test_required_fields_are_422_when_missing(api: Api, missing: str) -> None:
    body = policy_body(api.new_client().id)
    del body[missing]
    assert_problem(api.http.post(PATH, json=body, headers=api.admin.headers), 422, missing)


def test_repeat_and_page_have_defaults(api: Api) -> None:
    body = policy_body(api.new_client().id)
    del body["repeat"]
    created = create(api, body)
    assert (created["repeat"], created["page"]) == (0, True)


def test_clients_people_and_schedules_must_exist_and_be_fit_to_page(api: Api) -> None:
    alpha, beta = api.new_client("Alpha LLP"), api.new_client("Beta LLP")
    contact = api.new_person("client", client_id=alpha.id)
    walled = api.new_person("responder", clients=[beta.id])
    retired = api.new_person("responder")
    off = api.http.patch(
        f"/v1/people/{retired.person_id}", json={"active": False}, headers=api.admin.headers
    )
    assert off.status_code == 200, off.text
    fine = {"schedule_id": "default"}

    def targets(*people: dict[str, str]) -> list[dict[str, Any]]:
        return [{"targets": [fine, *people], "after_minutes": 1}]

    before = listed(api)
    for body, field in [
        (policy_body(str(uuid.uuid4())), "client_id"),
        (
            policy_body(alpha.id, steps=targets({"person_id": str(uuid.uuid4())})),
            "steps.0.targets.1.person_id",
        ),
        (
            policy_body(alpha.id, steps=targets({"person_id": contact.person_id})),
            "steps.0.targets.1.person_id",
        ),
        (
            policy_body(alpha.id, steps=targets({"person_id": retired.person_id})),
            "steps.0.targets.1.person_id",
        ),
        # Paging someone walled off from the client would tell them about its incidents.
        (
            policy_body(alpha.id, steps=targets({"person_id": walled.person_id})),
            "steps.0.targets.1.person_id",
        ),
        (
            policy_body(
                alpha.id,
                steps=[
                    *targets(),
                    {"targets": [{"schedule_id": str(uuid.uuid4())}], "after_minutes": 0},
                ],
            ),
            "steps.1.targets.0.schedule_id",
        ),
    ]:
        response = api.http.post(PATH, json=body, headers=api.admin.headers)
        assert_problem(response, 422, field)
    assert listed(api) == before
    # Inside the wall, the same person is fine.
    create(api, policy_body(beta.id, steps=targets({"person_id": walled.person_id})))

    # A change is checked the same way, and changes nothing when refused.
    policy = create(api, policy_body(alpha.id))
    for changes, field in [
        ({"steps": targets({"person_id": contact.person_id})}, "steps.0.targets.1.person_id"),
        ({"client_id": str(uuid.uuid4())}, "client_id"),
        ({"name": None}, "name"),
        ({"priorities": ["P1", "P9"]}, "priorities.1"),
        (
            {"steps": [{"targets": [{"schedule_id": "nope"}], "after_minutes": 0}]},
            "steps.0.targets.0.schedule_id",
        ),
    ]:
        response = api.http.patch(f"{PATH}/{policy['id']}", json=changes, headers=api.admin.headers)
        assert_problem(response, 422, field)
    assert get(api, policy["id"]) == policy
    # Moving a policy that names a walled person to a client outside the wall is refused too.
    walled_policy = create(
        api, policy_body(beta.id, steps=targets({"person_id": walled.person_id}), priorities=["P4"])
    )
    moved = api.http.patch(
        f"{PATH}/{walled_policy['id']}", json={"client_id": alpha.id}, headers=api.admin.headers
    )
    assert_problem(moved, 422, "steps.0.targets.1.person_id")


def test_two_policies_of_one_scope_sharing_a_priority_are_a_409_naming_both(api: Api) -> None:
    alpha, beta = api.new_client("Alpha LLP"), api.new_client("Beta LLP")
    first = create(api, policy_body(alpha.id, priorities=["P1", "P2"], name="Alpha urgent"))
    clash = api.http.post(
        PATH, json=policy_body(alpha.id, priorities=["P3", "P2"]), headers=api.admin.headers
    )
    detail = assert_problem(clash, 409)["detail"]
    assert "P2" in detail and first["id"] in detail and "P3" not in detail
    assert [p["id"] for p in listed(api, client_id=alpha.id)] == [first["id"]]

    # Another client, or a priority of its own, is no clash.
    create(api, policy_body(beta.id, priorities=["P1", "P2"]))
    routine = create(api, policy_body(alpha.id, priorities=["P3", "P4"]))

    # The firm's defaults are one scope too: the shipped P3/P4 default holds P4.
    firm = api.http.post(PATH, json=policy_body(None, priorities=["P4"]), headers=api.admin.headers)
    detail = assert_problem(firm, 409)["detail"]
    assert "P4" in detail and "default-p3-p4" in detail

    # A change into a clash is refused and changes nothing.
    widened = api.http.patch(
        f"{PATH}/{routine['id']}", json={"priorities": ["P1", "P3"]}, headers=api.admin.headers
    )
    detail = assert_problem(widened, 409)["detail"]
    assert "P1" in detail and first["id"] in detail
    unscoped = api.http.patch(
        f"{PATH}/{routine['id']}", json={"client_id": None}, headers=api.admin.headers
    )
    assert "default-p3-p4" in assert_problem(unscoped, 409)["detail"]
    assert get(api, routine["id"]) == routine
    # Its own priorities are no clash with itself.
    same = api.http.patch(
        f"{PATH}/{routine['id']}", json={"priorities": ["P4", "P3"]}, headers=api.admin.headers
    )
    assert same.status_code == 200, same.text


def test_concurrent_policies_for_one_priority_make_one_policy(api: Api) -> None:
    client = api.new_client()
    body = policy_body(client.id, priorities=["P2"])

    def post(_: int) -> int:
        return api.http.post(PATH, json=body, headers=api.admin.headers).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(post, range(6)))
    assert statuses == [201, 409, 409, 409, 409, 409]
    assert len(listed(api, client_id=client.id)) == 1


def test_a_stale_if_match_is_412_and_changes_nothing(api: Api) -> None:
    policy = create(api, policy_body(api.new_client().id))
    path = f"{PATH}/{policy['id']}"
    first = api.http.patch(
        path, json={"name": "First"}, headers=api.admin.headers | {"If-Match": '"1"'}
    )
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2 and first.headers["ETag"] == '"2"'
    stale = api.http.patch(
        path, json={"name": "Second"}, headers=api.admin.headers | {"If-Match": '"1"'}
    )
    assert_problem(stale, 412)
    assert stale.headers["ETag"] == '"2"'
    assert get(api, policy["id"]) == first.json()
    bad = api.http.patch(
        path, json={"name": "Third"}, headers=api.admin.headers | {"If-Match": "v1"}
    )
    assert_problem(bad, 400)
    # Nothing to change makes no new version.
    empty = api.http.patch(path, json={}, headers=api.admin.headers | {"If-Match": '"2"'})
    assert empty.status_code == 200 and empty.json() == first.json()
    assert_problem(
        api.http.patch(path, json={}, headers=api.admin.headers | {"If-Match": '"1"'}), 412
    )
    # Without If-Match a change applies to whatever is current.
    last = api.http.patch(path, json={"repeat": 3}, headers=api.admin.headers)
    assert last.status_code == 200, last.text
    assert (last.json()["name"], last.json()["repeat"], last.json()["version"]) == ("First", 3, 3)


def test_policies_are_listed_in_pages_newest_first(api: Api) -> None:
    client = api.new_client()
    made = [create(api, policy_body(client.id, priorities=[p]))["id"] for p in ("P1", "P2", "P3")]
    ids = [p["id"] for p in api.pages(PATH, api.admin, client_id=client.id, limit=1)]
    assert ids == list(reversed(made))
    bad_queries: list[tuple[dict[str, str | int], str]] = [
        ({"cursor": "nonsense"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"client_id": "not a client!"}, "client_id"),
    ]
    for params, field in bad_queries:
        response = api.http.get(PATH, params=params, headers=api.admin.headers)
        assert_problem(response, 422, field)


def test_unknown_policies_are_404(api: Api) -> None:
    for response in (
        api.http.get(f"{PATH}/{uuid.uuid4()}", headers=api.admin.headers),
        api.http.get(f"{PATH}/%00", headers=api.admin.headers),
        api.http.patch(f"{PATH}/{uuid.uuid4()}", json={"name": "x"}, headers=api.admin.headers),
        api.http.delete(f"{PATH}/{uuid.uuid4()}", headers=api.admin.headers),
    ):
        assert_problem(response, 404)


def test_staff_read_policies_and_only_managers_and_admins_change_them(api: Api) -> None:
    client = api.new_client()
    callers = api.one_of_each_kind(client)
    walled = api.new_person("responder", clients=[])
    policy = create(api, policy_body(client.id, priorities=["P1"]))
    path = f"{PATH}/{policy['id']}"
    for kind in ("responder", "manager", "admin"):
        reader = callers[kind]
        assert api.http.get(PATH, headers=reader.headers).status_code == 200
        assert api.http.get(path, headers=reader.headers).status_code == 200
    # A wall hides a client's policies as it hides its incidents; the firm's defaults it does not.
    assert_problem(api.http.get(path, headers=walled.headers), 404)
    assert api.http.get(f"{PATH}/default-p1-p2", headers=walled.headers).status_code == 200
    # Clients' keys and contacts: policies are not an incident route, so a 403.
    for kind in ("client_system", "client_contact", "responder"):
        caller = callers[kind]
        if kind != "responder":
            assert_problem(api.http.get(PATH, headers=caller.headers), 403)
            assert_problem(api.http.get(path, headers=caller.headers), 403)
        body = policy_body(client.id, priorities=["P2"])
        assert_problem(api.http.post(PATH, json=body, headers=caller.headers), 403)
        patched = api.http.patch(path, json={"name": "Mine now"}, headers=caller.headers)
        assert_problem(patched, 403)
        assert_problem(api.http.delete(path, headers=caller.headers), 403)
    assert get(api, policy["id"]) == policy
    for kind, priority in (("manager", "P2"), ("admin", "P3")):
        made = create(api, policy_body(client.id, priorities=[priority]), callers[kind])
        changed = api.http.patch(
            f"{PATH}/{made['id']}", json={"repeat": 0}, headers=callers[kind].headers
        )
        assert changed.status_code == 200, changed.text
        removed = api.http.delete(f"{PATH}/{made['id']}", headers=callers[kind].headers)
        assert removed.status_code == 204, removed.text
    assert_problem(api.http.get(PATH), 401)


# --- Choosing the policy, on a real database ----------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    await migrate(engine, "notify")
    yield engine
    await engine.dispose()


def fields(client_id: str | None, priorities: list[str], **changes: Any) -> PolicyFields:
    values: dict[str, Any] = {
        "name": f"Policy for {client_id or 'the firm'}",
        "steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": 1}],
        "repeat": 0,
        "priorities": priorities,
        "page": True,
        "client_id": client_id,
    }
    return PolicyFields(**(values | changes))


async def chosen(engine: AsyncEngine, client_id: str, priority: str) -> str | None:
    async with engine.begin() as connection:
        row = await policy_for(connection, client_id=client_id, priority=priority)
    return None if row is None else row.id


async def stored_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set((await connection.execute(select(escalation_policies.c.id))).scalars())


async def test_a_fresh_database_gets_the_shipped_defaults_on_first_lookup(
    engine: AsyncEngine,
) -> None:
    assert await stored_ids(engine) == set()
    assert await chosen(engine, "client-a", "P1") == "default-p1-p2"
    assert await chosen(engine, "client-a", "P4") == "default-p3-p4"
    assert await stored_ids(engine) == {"default-p1-p2", "default-p3-p4"}
    async with engine.begin() as connection:
        row = await policy_for(connection, client_id="client-a", priority="P2")
    assert row is not None
    assert (row.page, row.repeat, row.version, row.client_id) == (True, 0, 1, None)
    assert [step["after_minutes"] for step in row.steps] == [5, 10, 15]
    assert all(step["targets"] == [{"schedule_id": "default"}] for step in row.steps)
    assert await chosen(engine, "client-a", "P9") is None


async def test_the_clients_own_policy_wins_over_the_firms_default(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await policies.ensure_default_policies(connection)
        own = await policies.create_policy(
            connection, fields("client-a", ["P1", "P3"]), policy_id="a"
        )
        await policies.create_policy(connection, fields("client-b", ["P2"]), policy_id="b")
    assert await chosen(engine, "client-a", "P1") == own.id
    assert await chosen(engine, "client-a", "P3") == own.id
    assert await chosen(engine, "client-a", "P2") == "default-p1-p2"  # not its own: the firm's
    assert await chosen(engine, "client-b", "P2") == "b"
    assert await chosen(engine, "client-b", "P1") == "default-p1-p2"
    assert await chosen(engine, "client-c", "P3") == "default-p3-p4"

    # With a firm default gone, its priorities fall to the client's own or to nothing; the
    # shipped ones do not come back while the firm keeps any default of its own.
    async with engine.begin() as connection:
        await policies.delete_policy(connection, "default-p3-p4")
    assert await chosen(engine, "client-c", "P3") is None
    assert await chosen(engine, "client-a", "P3") == own.id
    assert await stored_ids(engine) == {"a", "b", "default-p1-p2"}


async def test_the_shipped_defaults_are_inserted_once_and_never_over_the_firms_own(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await policies.ensure_default_policies(connection)
        await policies.ensure_default_policies(connection)
        await policies.replace_policy(
            connection, "default-p1-p2", fields(None, ["P1", "P2"], name="Ours now")
        )
    async with engine.begin() as connection:
        await policies.ensure_default_policies(connection)
        assert (await policies.get_policy(connection, "default-p1-p2")).name == "Ours now"
        await connection.execute(delete(escalation_policies))
        await policies.create_policy(connection, fields(None, ["P1"]), policy_id="firm-own")
        await policies.ensure_default_policies(connection)
    assert await stored_ids(engine) == {"firm-own"}
    assert await chosen(engine, "client-a", "P2") is None  # the firm chose no P2 default


async def test_one_scope_cannot_share_a_priority(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await policies.create_policy(connection, fields("client-a", ["P1", "P2"]), policy_id="a1")
        await policies.create_policy(connection, fields("client-b", ["P2"]), policy_id="b1")
        await policies.create_policy(connection, fields(None, ["P2"]), policy_id="firm")
        with pytest.raises(AmbiguousPolicy) as clash:
            await policies.create_policy(
                connection, fields("client-a", ["P2", "P4"]), policy_id="a2"
            )
        assert (clash.value.priority, clash.value.other_id) == ("P2", "a1")
        with pytest.raises(AmbiguousPolicy) as firm_clash:
            await policies.create_policy(connection, fields(None, ["P3", "P2"]), policy_id="f2")
        assert (firm_clash.value.priority, firm_clash.value.other_id) == ("P2", "firm")
        with pytest.raises(AmbiguousPolicy):
            await policies.replace_policy(connection, "b1", fields("client-a", ["P1"]))


async def test_schedules_must_exist_and_versions_must_be_current(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            schedules.insert().values(
                id="night",
                name="Nights",
                timezone="UTC",
                definition={"layers": [], "overrides": []},
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        steps = [
            {"targets": [{"schedule_id": "night"}, {"schedule_id": "default"}], "after_minutes": 0},
            {"targets": [{"person_id": "p-1"}, {"schedule_id": "missing"}], "after_minutes": 0.1},
        ]
        with pytest.raises(InvalidArgument) as missing:
            await policies.create_policy(
                connection, fields("c", ["P1"], steps=steps), policy_id="x"
            )
        assert missing.value.field == "steps.1.targets.1.schedule_id"
        row = await policies.create_policy(
            connection, fields("c", ["P1"], steps=steps[:1]), policy_id="x"
        )
        assert row.steps == steps[:1]
        renamed = await policies.replace_policy(
            connection,
            "x",
            fields("c", ["P1"], steps=steps[:1], name="Renamed"),
            expected_version=1,
        )
        assert renamed.version == 2
        with pytest.raises(StalePolicy) as stale:
            await policies.replace_policy(connection, "x", fields("c", ["P1"]), expected_version=1)
        assert stale.value.current == 2
        with pytest.raises(InvalidArgument) as bad_target:
            await policies.create_policy(
                connection,
                fields(
                    "d",
                    ["P1"],
                    steps=[
                        {"targets": [{"person_id": "p", "schedule_id": "s"}], "after_minutes": 0}
                    ],
                ),
                policy_id="y",
            )
        assert bad_target.value.field == "steps.0.targets.0"
