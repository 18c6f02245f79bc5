"""The gateway as a client system sees it, plus polling for asynchronous outcomes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from firebreak.launcher import Platform


def eventually(check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Polls until `check` returns something truthy; fails with the last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s; last value: {result!r}")
        time.sleep(interval)


@dataclass(frozen=True)
class Tenant:
    id: str  # the client's id ("operator" for the firm's staff)
    headers: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Person(Tenant):
    """A person holding a personal key; usable wherever a Tenant is."""

    person_id: str
    key_id: str
    role: str
    email: str


# Who a route may be called as: one of each kind of principal (permissions.PrincipalKind).
PRINCIPAL_KINDS = ("client_system", "client_contact", "responder", "manager", "admin")


class Api:
    """A thin HTTP client for the gateway, with an admin key and helpers to make clients."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http = httpx.Client(base_url=platform.gateway_url, timeout=10)
        self.admin = Tenant("operator", {"Authorization": f"Bearer {platform.admin_key}"})

    def new_client(self, name: str = "Acme LLP") -> Tenant:
        """Creates a client organisation and a client-role key for it."""
        client = self.http.post("/v1/clients", json={"name": name}, headers=self.admin.headers)
        assert client.status_code == 201, client.text
        key = self.http.post(
            f"/v1/clients/{client.json()['id']}/api-keys",
            json={"role": "client"},
            headers=self.admin.headers,
        )
        assert key.status_code == 201, key.text
        return Tenant(client.json()["id"], {"Authorization": f"Bearer {key.json()['key']}"})

    def new_person(
        self,
        role: str,
        *,
        clients: list[str] | None = None,
        client_id: str | None = None,
        **fields: Any,
    ) -> Person:
        """Adds a person (a unique email unless given) and issues them a personal key."""
        body: dict[str, Any] = {
            "name": f"{role.title()} {uuid.uuid4().hex[:6]}",
            "email": f"{role}-{uuid.uuid4().hex[:12]}@firm.example",
            "role": role,
            **fields,
        }
        if clients is not None:
            body["clients"] = clients
        if client_id is not None:
            body["client_id"] = client_id
        person = self.http.post("/v1/people", json=body, headers=self.admin.headers)
        assert person.status_code == 201, person.text
        key = self.issue_key(person.json()["id"])
        return Person(
            id=person.json()["client_id"],
            headers={"Authorization": f"Bearer {key['key']}"},
            person_id=person.json()["id"],
            key_id=key["id"],
            role=role,
            email=body["email"],
        )

    def issue_key(self, person_id: str) -> dict[str, Any]:
        response = self.http.post(f"/v1/people/{person_id}/api-keys", headers=self.admin.headers)
        assert response.status_code == 201, response.text
        return response.json()

    def one_of_each_kind(self, client: Tenant) -> dict[str, Tenant]:
        """A caller of every principal kind for `client`: its system key, a contact of it, and
        unwalled staff (responder, manager, admin), keyed by kind."""
        return {
            "client_system": client,
            "client_contact": self.new_person("client", client_id=client.id),
            "responder": self.new_person("responder"),
            "manager": self.new_person("manager"),
            "admin": self.new_person("admin"),
        }

    def pages(self, path: str, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list, following cursors."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = params | ({"cursor": cursor} if cursor else {})
            page = self.http.get(path, params=query, headers=tenant.headers)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return items

    def report(
        self, tenant: Tenant, *, idempotency_key: str | None = None, **overrides: Any
    ) -> httpx.Response:
        headers = dict(tenant.headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self.http.post("/v1/incidents", json=incident_body(**overrides), headers=headers)

    def incident(self, tenant: Tenant, incident_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/incidents/{incident_id}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def list_ids(self, tenant: Tenant, **params: Any) -> list[str]:
        """Every incident id the tenant can list, following cursors."""
        ids: list[str] = []
        cursor = None
        while True:
            query = params | ({"cursor": cursor} if cursor else {})
            page = self.http.get("/v1/incidents", params=query, headers=tenant.headers)
            assert page.status_code == 200, page.text
            ids += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return ids

    def timeline(self, tenant: Tenant, incident_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/v1/incidents/{incident_id}/timeline", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return response.json()["entries"]

    def wait_until_notified(self, tenant: Tenant, incident_id: str) -> dict[str, Any]:
        def notified() -> dict[str, Any] | None:
            incident = self.incident(tenant, incident_id)
            return incident if incident["notified_at"] else None

        return eventually(notified)

    def wait_for_timeline(
        self, tenant: Tenant, incident_id: str, length: int
    ) -> list[dict[str, Any]]:
        """Waits until the timeline has at least `length` entries, then returns it."""

        def long_enough() -> list[dict[str, Any]] | None:
            entries = self.timeline(tenant, incident_id)
            return entries if len(entries) >= length else None

        return eventually(long_enough)


def incident_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Payroll portal unreachable",
        "description": "Client staff cannot reach the payroll portal since 09:10.",
        "type": "service_outage",
        "impact": "significant",
        "urgency": "high",
        "reporter": {"name": "Grace Hopper", "email": "grace@client.example"},
        "affected_assets": ["payroll-portal"],
        "labels": ["payroll"],
    }
    body.update(overrides)
    return body
