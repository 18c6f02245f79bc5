"""Signing in to the console: passwords (argon2id), personal keys, one-time links; the session
cookie's attributes, CSRF on every form, sign-out, idle sessions, slowed-down guessing. On
SQLite, but for the sessions' life (signing in and out, idle expiry) on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from services.gateway.models import console_sessions
from tests.conftest import on_backend
from tests.console_client import PASSWORD, browser, form_token, sign_in, with_password
from tests.gateway_client import Api
from tests.gateway_database import on_gateway_database


def test_a_person_signs_in_with_a_password_and_out_again(api: Api) -> None:
    person = with_password(api, api.new_person("responder"))
    with browser(api) as client:
        assert client.get("/console").url.path == "/console/sign-in"  # not signed in yet
        signed_in = sign_in(client, person.email.upper())  # addresses ignore case
        assert signed_in.url.path == "/console"
        assert signed_in.status_code == 200
        cookie = signed_in.history[0].headers["set-cookie"]
        assert "firebreak_session=fbs_" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain HTTP here; Secure behind TLS
        token = form_token(signed_in.text)
        out = client.post("/console/sign-out", data={"form_token": token})
        assert out.url.path == "/console/sign-in"
        assert client.get("/console").url.path == "/console/sign-in"


@on_backend("sqlite", "platform")
def test_a_wrong_password_or_unknown_address_says_the_same_and_sets_no_session(api: Api) -> None:
    person = with_password(api, api.new_person("manager"))
    with browser(api) as client:
        wrong = sign_in(client, person.email, "not the password at all")
        unknown = sign_in(client, "nobody@firm.example")
        for response in (wrong, unknown):
            assert response.status_code == 401
            assert "The email address or password is wrong." in response.text
            assert "firebreak_session" not in client.cookies
        assert sign_in(client, person.email).url.path == "/console"


@on_backend("sqlite", "platform")
def test_repeated_failures_are_slowed_down_with_retry_after(api: Api) -> None:
    person = with_password(api, api.new_person("responder"))
    with browser(api) as client:
        statuses = [sign_in(client, person.email, "wrong password!!").status_code for _ in range(6)]
        assert statuses == [401] * 6
        slowed = sign_in(client, person.email)  # even the right password waits its turn
        assert slowed.status_code == 429
        assert int(slowed.headers["retry-after"]) >= 1
        assert "Too many failed sign-ins" in slowed.text
        # Another address is not held up by this one's failures.
        other = with_password(api, api.new_person("responder"))
        assert sign_in(client, other.email).url.path == "/console"


@on_backend("sqlite", "platform")
def test_a_form_without_its_sessions_token_changes_nothing(api: Api) -> None:
    person = with_password(api, api.new_person("responder"))
    with browser(api) as client:
        sign_in(client, person.email)
        forged = client.post("/console/sign-out", data={"form_token": "made-up"})
        assert forged.status_code == 400
        assert client.get("/console").url.path == "/console"  # still signed in
        # The sign-in form's own token must match its cookie (double submit).
        client.cookies.clear()
        refused = client.post(
            "/console/sign-in",
            data={"sign_in_token": "made-up", "email": person.email, "password": PASSWORD},
        )
        assert refused.status_code == 400


@on_backend("sqlite", "platform")
def test_a_personal_key_signs_in_and_a_client_systems_key_does_not(api: Api) -> None:
    person = api.new_person("responder")
    system = api.new_client("Keyholders plc")
    with browser(api) as client:
        token = form_token(client.get("/console/sign-in").text, "sign_in_token")
        key = person.headers["Authorization"].removeprefix("Bearer ")
        signed_in = client.post("/console/sign-in", data={"sign_in_token": token, "key": key})
        assert signed_in.url.path == "/console"
    with browser(api) as client:
        token = form_token(client.get("/console/sign-in").text, "sign_in_token")
        key = system.headers["Authorization"].removeprefix("Bearer ")
        refused = client.post("/console/sign-in", data={"sign_in_token": token, "key": key})
        assert refused.status_code == 401


@on_backend("sqlite", "platform")
def test_a_one_time_link_sets_a_password_once(api: Api) -> None:
    person = api.new_person("client", client_id=api.new_client("Linked LLP").id)
    issued = api.http.post(
        f"/v1/people/{person.person_id}/sign-in-links", headers=api.admin.headers
    )
    assert issued.status_code == 201, issued.text
    path = httpx_path(issued.json()["url"])
    with browser(api) as client:
        form = client.get(path)
        token = form_token(form.text, "sign_in_token")
        mismatch = client.post(
            path,
            data={"sign_in_token": token, "password": PASSWORD, "confirmation": "something else"},
        )
        assert mismatch.status_code == 422
        short = client.post(
            path, data={"sign_in_token": token, "password": "short", "confirmation": "short"}
        )
        assert short.status_code == 422 and "12" in short.text
        done = client.post(
            path, data={"sign_in_token": token, "password": PASSWORD, "confirmation": PASSWORD}
        )
        assert done.url.path == "/console"
    with browser(api) as client:
        assert client.get(path).status_code == 404  # used up
        assert sign_in(client, person.email).url.path == "/console"


def httpx_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@on_backend("sqlite", "platform")
def test_only_an_admin_sets_passwords_or_issues_links(api: Api) -> None:
    person = api.new_person("responder")
    manager = api.new_person("manager")
    for response in (
        api.http.put(
            f"/v1/people/{person.person_id}/password",
            json={"password": PASSWORD},
            headers=manager.headers,
        ),
        api.http.post(f"/v1/people/{person.person_id}/sign-in-links", headers=manager.headers),
    ):
        assert response.status_code == 403
    short = api.http.put(
        f"/v1/people/{person.person_id}/password",
        json={"password": "short"},
        headers=api.admin.headers,
    )
    assert short.status_code == 422
    assert short.json()["errors"][0]["field"].endswith("password")


def test_a_session_idle_past_its_limit_ends(api: Api) -> None:
    person = with_password(api, api.new_person("responder"))
    with browser(api) as client:
        sign_in(client, person.email)
        assert client.get("/console").url.path == "/console"
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)  # the idle limit is 30 minutes
        on_gateway_database(
            api.platform,
            update(console_sessions)
            .where(console_sessions.c.person_id == person.person_id)
            .values(last_seen_at=an_hour_ago),
        )
        assert client.get("/console").url.path == "/console/sign-in"


@on_backend("sqlite", "platform")
def test_a_new_password_ends_open_sessions(api: Api) -> None:
    person = with_password(api, api.new_person("responder"))
    with browser(api) as client:
        sign_in(client, person.email)
        with_password(api, person, "an entirely new password")
        assert client.get("/console").url.path == "/console/sign-in"


@on_backend("sqlite", "platform")
@pytest.mark.parametrize("path", ["/console", "/console/board/rows", "/console/live"])
def test_pages_need_a_session(api: Api, path: str) -> None:
    with browser(api) as client:
        assert client.get(path).url.path == "/console/sign-in"
