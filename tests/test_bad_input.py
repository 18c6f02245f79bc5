"""Bad input gets a 4xx problem+json naming the field, and writes nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.gateway_client import Api, eventually, incident_body

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
        if status == 422:
            assert field in body["detail"], body
    return body


def without(field: str) -> dict[str, Any]:
    body = incident_body()
    del body[field]
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (without("title"), "title"),
        (without("impact"), "impact"),
        (without("reporter"), "reporter"),
        (incident_body(title=""), "title"),
        (incident_body(title="x" * 201), "title"),
        (incident_body(type="meteor_strike"), "type"),
        (incident_body(impact="catastrophic"), "impact"),
        (incident_body(urgency="whenever"), "urgency"),
        (incident_body(reporter={"name": "Ada", "email": "not-an-email"}), "reporter.email"),
        (incident_body(reporter={"email": "ada@example.com"}), "reporter.name"),
        (incident_body(detected_at="yesterday"), "detected_at"),
        (incident_body(detected_at="2026-11-26T09:10:00"), "detected_at"),  # no time zone
        (incident_body(detected_at="0001-01-01T00:00:00+01:00"), "detected_at"),  # before year 1
        (incident_body(detected_at="2999-01-01T00:00:00Z"), "detected_at"),  # in the future
        (incident_body(title="nul\u0000byte"), "title"),
        (incident_body(description="nul\u0000byte"), "description"),
        (incident_body(labels=["ok", ""]), "labels.1"),
        (incident_body(urgancy="high"), "urgancy"),  # a misspelt field is not silently dropped
        ([1, 2, 3], "body"),
    ],
)
def test_invalid_reports_are_422_naming_the_field(api: Api, body: Any, field: str) -> None:
    tenant = api.new_client()
    response = api.http.post("/v1/incidents", json=body, headers=tenant.headers)
    assert_problem(response, 422, field)
    assert api.list_ids(tenant) == []


def test_malformed_json_is_400(api: Api) -> None:
    tenant = api.new_client()
    response = api.http.post(
        "/v1/incidents",
        content=b'{"title": "unterminated',
        headers=tenant.headers | {"Content-Type": "application/json"},
    )
    assert_problem(response, 400, "body")
    assert api.list_ids(tenant) == []


def test_oversized_bodies_are_413_declared_or_streamed(api: Api) -> None:
    tenant = api.new_client()
    huge = incident_body(description="x" * 200_000)
    assert_problem(api.http.post("/v1/incidents", json=huge, headers=tenant.headers), 413)

    def chunks():  # no Content-Length: the limit must hold for streamed bodies too
        yield b'{"title": "streamed", "description": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    streamed = api.http.post(
        "/v1/incidents",
        content=chunks(),
        headers=tenant.headers | {"Content-Type": "application/json"},
    )
    assert_problem(streamed, 413)
    assert api.list_ids(tenant) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"status": "lost"}, "status"),
        ({"priority": "P9"}, "priority"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "c2VxOjk5OTk5OTk5OTk5OTk5OTk5OTk5OQ"}, "cursor"),  # seq beyond 64 bits
    ],
)
def test_invalid_list_queries_are_422(api: Api, query: dict[str, Any], field: str) -> None:
    tenant = api.new_client()
    assert_problem(api.http.get("/v1/incidents", params=query, headers=tenant.headers), 422, field)


def test_unknown_incidents_and_routes_are_404_problems(api: Api) -> None:
    tenant = api.new_client()
    assert_problem(
        api.http.get("/v1/incidents/00000000-0000-0000-0000-000000000000", headers=tenant.headers),
        404,
    )
    assert_problem(api.http.get("/v1/nothing-here", headers=tenant.headers), 404)
    assert_problem(api.http.get("/v1/incidents/%00", headers=tenant.headers), 404)
    assert_problem(api.http.get("/v1/incidents/x%00y/timeline", headers=tenant.headers), 404)
    assert_problem(
        api.http.post(
            "/v1/clients/%00/api-keys", json={"role": "client"}, headers=api.admin.headers
        ),
        404,
    )
    assert_problem(api.http.delete("/v1/incidents", headers=tenant.headers), 405)


def test_admin_inputs_are_validated(api: Api) -> None:
    assert_problem(api.http.post("/v1/clients", json={}, headers=api.admin.headers), 422, "name")
    tenant = api.new_client()
    assert_problem(
        api.http.post(
            f"/v1/clients/{tenant.id}/api-keys", json={"role": "root"}, headers=api.admin.headers
        ),
        422,
        "role",
    )


def test_over_long_idempotency_key_is_422(api: Api) -> None:
    tenant = api.new_client()
    response = api.report(tenant, idempotency_key="k" * 300)
    assert_problem(response, 422, "idempotency-key")
    assert api.list_ids(tenant) == []


def test_ids_with_nul_or_junk_are_4xx_never_5xx(api: Api) -> None:
    """PostgreSQL refuses NUL outright: an id must be refused before it reaches a database."""
    client = api.new_client()
    manager = api.new_person("manager")
    incident = api.report(client).json()["id"]
    eventually(lambda: api.incident(manager, incident)["status"] == "triaged")
    base = f"/v1/incidents/{incident}"
    for method, path, body, field in (
        ("POST", f"{base}/merge", {"into": "ab\x00c"}, "into"),
        ("POST", f"{base}/responders", {"person_id": "ab\x00c"}, "person_id"),
        ("PUT", f"{base}/roles/scribe", {"person_id": "a b"}, "person_id"),
        ("PATCH", f"{base}/tasks/x", {"assignee_id": "a\x00b"}, "assignee_id"),
        ("GET", "/v1/api-keys?person_id=a%00b", None, "person_id"),
        ("GET", "/v1/people?client_id=a%00b", None, "client_id"),
    ):
        response = api.http.request(method, path, json=body, headers=manager.headers)
        assert_problem(response, 422, field)
    for path in (f"{base}/tasks/a%00b", f"{base}/responders/a%00b"):
        method = "PATCH" if "tasks" in path else "DELETE"
        response = api.http.request(method, path, json={"note": "x"}, headers=manager.headers)
        assert_problem(response, 404)
    cursor = base64.urlsafe_b64encode(b"2024-01-01T00:00:00+00:00|\x00").decode()
    response = api.http.get("/v1/people", params={"cursor": cursor}, headers=manager.headers)
    assert_problem(response, 422, "cursor")
