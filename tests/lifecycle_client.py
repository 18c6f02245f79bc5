"""Driving an incident through its lifecycle over HTTP, as a responder's tools would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway_client import Api, Tenant, eventually

# How each lifecycle command is sent, with a body that is valid for it.
COMMAND_CALLS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "acknowledge": ("POST", "acknowledge", None),
    "contain": ("POST", "contain", {"summary": "Host isolated from the network"}),
    "resolve": ("POST", "resolve", {"summary": "Service restored from clean backup"}),
    "reopen": ("POST", "reopen", {"reason": "Symptoms came back"}),
    "decline": ("POST", "decline", {"reason": "A planned maintenance window"}),
    "reclassify": ("POST", "reclassify", {"urgency": "low", "reason": "Workaround in place"}),
    "close": ("POST", "close", {"closure_code": "resolved", "summary": "Restored and reviewed"}),
}


def report_triaged(api: Api, tenant: Tenant, **overrides: Any) -> str:
    """Reports an incident and waits until triage has opened its response."""
    created = api.report(tenant, **overrides)
    assert created.status_code == 201, created.text
    incident_id: str = created.json()["id"]
    eventually(lambda: api.incident(api.admin, incident_id)["status"] == "triaged")
    return incident_id


def run(
    api: Api,
    caller: Tenant,
    incident_id: str,
    command: str,
    body: dict[str, Any] | None = None,
    *,
    if_match: str | None = None,
) -> httpx.Response:
    """Sends one command: a name from COMMAND_CALLS with its default body, or merge,
    assign_role (body: role, person_id), add_responder, remove_responder (body: person_id)."""
    headers = dict(caller.headers)
    if if_match is not None:
        headers["If-Match"] = if_match
    base = f"/v1/incidents/{incident_id}"
    if command in COMMAND_CALLS:
        method, path, default = COMMAND_CALLS[command]
        return api.http.request(
            method, f"{base}/{path}", json=body if body is not None else default, headers=headers
        )
    assert body is not None, command
    if command == "merge":
        return api.http.post(f"{base}/merge", json=body, headers=headers)
    if command == "assign_role":
        role, rest = body["role"], {k: v for k, v in body.items() if k != "role"}
        return api.http.put(f"{base}/roles/{role}", json=rest, headers=headers)
    if command == "add_responder":
        return api.http.post(f"{base}/responders", json=body, headers=headers)
    if command == "remove_responder":
        return api.http.delete(f"{base}/responders/{body['person_id']}", headers=headers)
    raise AssertionError(f"unknown command {command}")


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def tasks(api: Api, caller: Tenant, incident_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(
        api.http.get(f"/v1/incidents/{incident_id}/tasks", headers=caller.headers)
    )["items"]
    return items


def finish_containment(api: Api, caller: Tenant, incident_id: str) -> None:
    """Marks every required containment task done, so /contain is allowed."""
    for task in tasks(api, caller, incident_id):
        if task["required"] and task["phase"] == "containment" and task["status"] != "done":
            ok(
                api.http.patch(
                    f"/v1/incidents/{incident_id}/tasks/{task['id']}",
                    json={"status": "done", "note": "done"},
                    headers=caller.headers,
                )
            )


def bring_to(
    api: Api, caller: Tenant, incident_id: str, state: str, *, merge_into: str = ""
) -> None:
    """Moves a triaged incident to `state` along the SOP's path, as `caller` (staff)."""
    if state == "triaged":
        return
    if state == "declined":
        ok(run(api, caller, incident_id, "decline"))
        return
    if state == "merged":
        ok(run(api, caller, incident_id, "merge", {"into": merge_into}))
        return
    ok(run(api, caller, incident_id, "acknowledge"))
    if state == "acknowledged":
        return
    finish_containment(api, caller, incident_id)
    ok(run(api, caller, incident_id, "contain"))
    if state == "contained":
        return
    ok(run(api, caller, incident_id, "resolve"))
    assert state == "resolved", state
