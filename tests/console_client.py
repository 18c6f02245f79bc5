"""A browser-like HTTP client for the console (cookies kept, redirects followed), and the
sign-in helpers the console tests share."""

from __future__ import annotations

import re

import httpx

from tests.gateway_client import Api, Person

PASSWORD = "correct horse battery staple"
FORM_TOKEN = re.compile(r'name="(form_token|sign_in_token)" value="([^"]+)"')


def form_token(html: str, name: str = "form_token") -> str:
    for found_name, value in FORM_TOKEN.findall(html):
        if found_name == name:
            return value
    raise AssertionError(f"no {name} in the page")


def hidden_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found is not None, f"no {name} in the page"
    return found[1]


def browser(api: Api) -> httpx.Client:
    return httpx.Client(base_url=api.platform.gateway_url, timeout=30, follow_redirects=True)


def with_password(api: Api, person: Person, password: str = PASSWORD) -> Person:
    response = api.http.put(
        f"/v1/people/{person.person_id}/password",
        json={"password": password},
        headers=api.admin.headers,
    )
    assert response.status_code == 204, response.text
    return person


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    token = form_token(client.get("/console/sign-in").text, "sign_in_token")
    return client.post(
        "/console/sign-in",
        data={"sign_in_token": token, "email": email, "password": password},
    )
