"""What the tests of the post-incident review, closure and reports share: driving an incident
to the point where it can be reviewed and closed, reading PDFs back, and reading what people
wrote on a timeline entry."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pypdf import PdfReader

from tests.follow_up_client import Crew
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import finish_containment, ok, run

NARRATIVE = {
    "what_went_well": "Paging reached the on-call responder within two minutes.",
    "what_went_wrong": "The VPN appliance had no configuration backup.",
    "lessons_learned": "Back up network appliance configuration nightly.",
}


def pdf_text(content: bytes) -> str:
    """Every page's text, extracted as a reader of the PDF would get it."""
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def resolve(api: Api, commander: Tenant, incident_id: str) -> None:
    """Contains and resolves an acknowledged incident."""
    finish_containment(api, commander, incident_id)
    ok(run(api, commander, incident_id, "contain"))
    ok(run(api, commander, incident_id, "resolve"))


def review_path(incident_id: str) -> str:
    return f"/v1/incidents/{incident_id}/review"


def new_action(api: Api, caller: Tenant, incident_id: str, owner: str, **fields: Any) -> str:
    due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    body = {"kind": "corrective", "title": "Back up the VPN appliance", "owner_id": owner}
    created = api.http.post(
        f"/v1/incidents/{incident_id}/actions",
        json=body | {"due_at": due} | fields,
        headers=caller.headers,
    )
    action_id: str = ok(created)["id"]
    return action_id


def move_action(api: Api, caller: Tenant, incident_id: str, action_id: str, **body: Any) -> None:
    ok(
        api.http.patch(
            f"/v1/incidents/{incident_id}/actions/{action_id}", json=body, headers=caller.headers
        )
    )


def signed_off(api: Api, crew: Crew, incident_id: str) -> dict[str, Any]:
    """Drafts the review, writes its narrative and has the crew's manager sign it off."""
    path = review_path(incident_id)
    drafted = api.http.post(path, headers=crew.manager.headers)
    assert drafted.status_code in (200, 201), drafted.text
    ok(api.http.patch(path, json=NARRATIVE, headers=crew.manager.headers))
    return ok(api.http.post(f"{path}/sign-off", headers=crew.manager.headers))


def close(api: Api, caller: Tenant, incident_id: str, **body: Any) -> httpx.Response:
    payload = {"closure_code": "resolved", "summary": "Service restored; lessons recorded."}
    return api.http.post(
        f"/v1/incidents/{incident_id}/close", json=payload | body, headers=caller.headers
    )


def said(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """What people wrote on a timeline entry, beside its line: (name, value) in order."""
    return [(field["name"], field["value"]) for field in entry["fields"]]


def timeline_has(api: Api, incident_id: str, event_type: str, count: int = 1) -> None:
    """Waits until review's timeline (and so its copies) holds `count` events of the type."""

    def seen() -> bool:
        entries = api.timeline(api.admin, incident_id)
        return sum(entry["type"] == event_type for entry in entries) >= count

    eventually(seen)
