"""The API's description (/docs, /redoc, /openapi.json) is served unless FIREBREAK_API_DOCS
turns it off, as a deployment may (the chart's apiDocs)."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.conftest import lone_gateway

DESCRIPTION = ("/docs", "/redoc", "/openapi.json")


@pytest.mark.parametrize("setting", [None, "false"], ids=["default", "off"])
def test_the_api_description_can_be_turned_off(tmp_path: Path, setting: str | None) -> None:
    admin_key = "fbk_docs_" + secrets.token_urlsafe(24)
    env = {} if setting is None else {"FIREBREAK_API_DOCS": setting}
    with lone_gateway(tmp_path, admin_key=admin_key, env=env) as gateway:
        answers = {path: httpx.get(gateway.gateway_url + path) for path in DESCRIPTION}
        admin = {"Authorization": f"Bearer {admin_key}"}
        api = httpx.get(f"{gateway.gateway_url}/v1/api-keys", headers=admin)
    expected = 200 if setting is None else 404
    assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(
        DESCRIPTION, expected
    )
    if setting is None:
        assert "/v1/incidents" in answers["/openapi.json"].json()["paths"]
    else:
        assert answers["/openapi.json"].headers["content-type"] == "application/problem+json"
    assert api.status_code == 200  # the API itself is served either way
