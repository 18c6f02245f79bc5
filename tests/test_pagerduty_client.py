"""PagerDuty's own Events API v2 client (pdpyras's EventsAPISession), unchanged but for its URL,
triggers, acknowledges and resolves Firebreak incidents (issue 14 §2)."""

from __future__ import annotations

import warnings

from tests.alert_client import incident_of, new_integration, unique_key
from tests.conftest import on_backend
from tests.gateway_client import Api, eventually
from tests.lifecycle_client import finish_containment

with warnings.catch_warnings():
    # pdpyras warns on import that its successor is the `pagerduty` package; its Events API
    # client is the one monitoring tools have long embedded, which is what this proves.
    warnings.simplefilter("ignore", UserWarning)
    from pdpyras import EventsAPISession


@on_backend("sqlite", "platform")
def test_pdpyras_triggers_acknowledges_and_resolves(api: Api) -> None:
    client = api.new_client()
    integration = new_integration(api, client.id, resolve_with_alerts=True)
    session = EventsAPISession(integration["key"])
    session.url = api.platform.gateway_url  # the only change a sender makes, with the key

    dedup_key = unique_key()
    returned = session.trigger(
        "Replication lag above 60 s",
        "db-2.example.com",
        dedup_key=dedup_key,
        severity="warning",
        custom_details={"lag_seconds": 75},
    )
    assert returned == dedup_key
    generated = session.trigger("Backups failed", "backup-1", severity="error")
    assert generated and generated != dedup_key

    incident = incident_of(api, client, dedup_key)
    assert incident is not None and incident["title"] == "Replication lag above 60 s"
    incident_id = incident["id"]
    eventually(lambda: api.incident(client, incident_id)["status"] == "triaged")

    assert session.acknowledge(dedup_key) == dedup_key
    eventually(lambda: api.incident(client, incident_id)["status"] == "acknowledged")
    finish_containment(api, api.new_person("manager"), incident_id)
    assert session.resolve(dedup_key) == dedup_key
    eventually(lambda: api.incident(client, incident_id)["status"] == "resolved")
    assert incident_of(api, client, generated) is not None
