"""Each client sees only its own incidents; keys authenticate, roles authorise."""

from __future__ import annotations

from tests.gateway_client import Api, Tenant


def test_a_client_cannot_read_or_list_another_clients_incidents(api: Api) -> None:
    alpha, beta = api.new_client("Alpha LLP"), api.new_client("Beta LLP")
    secret = api.report(alpha, title="Alpha's breach").json()
    api.wait_for_timeline(alpha, secret["id"], 1)

    for path in (f"/v1/incidents/{secret['id']}", f"/v1/incidents/{secret['id']}/timeline"):
        response = api.http.get(path, headers=beta.headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert "Alpha" not in response.text
    assert secret["id"] not in api.list_ids(beta)
    assert api.list_ids(alpha) == [secret["id"]]
    # The operator (admin) sees every client's incidents.
    assert api.incident(api.admin, secret["id"])["client_id"] == alpha.id
    assert secret["id"] in api.list_ids(api.admin, limit=200)


def test_missing_or_wrong_keys_are_401(api: Api) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer fbk_not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ):
        response = api.http.get("/v1/incidents", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401


def test_only_admins_manage_clients_and_keys(api: Api) -> None:
    tenant = api.new_client()
    assert (
        api.http.post("/v1/clients", json={"name": "Sneaky"}, headers=tenant.headers).status_code
        == 403
    )
    assert (
        api.http.post(
            f"/v1/clients/{tenant.id}/api-keys", json={"role": "admin"}, headers=tenant.headers
        ).status_code
        == 403
    )
    unknown = api.http.post(
        "/v1/clients/no-such-client/api-keys", json={"role": "client"}, headers=api.admin.headers
    )
    assert unknown.status_code == 404


def test_admin_keys_belong_to_the_operator_and_see_across_clients(api: Api) -> None:
    alpha, beta = api.new_client("Alpha LLP"), api.new_client("Beta LLP")
    refused = api.http.post(
        f"/v1/clients/{alpha.id}/api-keys", json={"role": "admin"}, headers=api.admin.headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "role"

    key = api.http.post(
        "/v1/clients/operator/api-keys", json={"role": "admin"}, headers=api.admin.headers
    )
    assert key.status_code == 201
    assert key.json()["key"].startswith("fbk_")
    staff = Tenant("operator", {"Authorization": f"Bearer {key.json()['key']}"})
    ids = [api.report(alpha).json()["id"], api.report(beta).json()["id"]]
    assert [api.incident(staff, incident_id)["id"] for incident_id in ids] == ids


def test_a_new_incident_has_a_timeline_before_review_saw_it(api: Api) -> None:
    tenant = api.new_client()
    created = api.report(tenant).json()
    response = api.http.get(f"/v1/incidents/{created['id']}/timeline", headers=tenant.headers)
    assert response.status_code == 200  # possibly still empty, never a 404
    assert response.json()["incident_id"] == created["id"]


def test_authentication_comes_before_anything_about_the_resource(api: Api) -> None:
    for path in ("/v1/incidents/%00", "/v1/incidents/no-such-id/timeline"):
        assert api.http.get(path).status_code == 401, path
