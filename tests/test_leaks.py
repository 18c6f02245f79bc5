"""What leaks: database errors keep the values refused out of logs and spans; a client's trace
headers do not become the incident's trace; list cursors tell nothing of other clients; text
people read holds no control or format characters."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
import sqlalchemy
from starlette.requests import Request

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.launcher import Platform
from firebreak.telemetry import DatabaseErrorRedactingFormatter
from services.gateway.problems import loggable
from tests.conftest import on_backend
from tests.gateway_client import Api, eventually, incident_body
from tests.test_bad_input import assert_problem

# Partial unique indexes make the databases refuse a second row holding this prefix: real
# database errors (constraint violations) on writes, in intake (behind gRPC) and the gateway.
PROBE = "leak-probe-"
PROBE_INDEXES = {
    "intake": f"CREATE UNIQUE INDEX leak_probe ON incidents (description) "
    f"WHERE description LIKE '{PROBE}%'",
    "gateway": f"CREATE UNIQUE INDEX leak_probe ON clients (name) WHERE name LIKE '{PROBE}%'",
}


def on_database(platform: Platform, service: str, sql: str) -> list[tuple[Any, ...]]:
    """Runs one statement on a service's own database, SQLite file or PostgreSQL."""
    url = platform.database_urls.get(service)
    if url is None:
        with contextlib.closing(sqlite3.connect(platform.var_dir / f"{service}.db")) as db:
            rows = db.execute(sql).fetchall()
            db.commit()
            return rows

    async def run() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def files_holding(platform: Platform, values: list[str]) -> dict[str, list[str]]:
    """Each log and trace file of the platform that holds any of `values`, with those."""
    found: dict[str, list[str]] = {}
    for folder in ("logs", "traces"):
        for path in (platform.var_dir / folder).rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                if held := [value for value in values if value in text]:
                    found[str(path)] = held
    return found


def spans(platform: Platform) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in (platform.var_dir / "traces").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]


def log_text(platform: Platform, service: str) -> str:
    return "".join(path.read_text() for path in (platform.var_dir / "logs").glob(f"{service}*"))


def test_failed_writes_leave_their_values_in_no_log_or_span(api: Api) -> None:
    platform = api.platform
    token = secrets.token_hex(8)
    description = f"{PROBE}{token} the partner's laptop held the Meridian merger files"
    client_name = f"{PROBE}{token} Meridian Holdings"
    tenant = api.new_client()
    person = api.new_person("responder")
    issued_key = api.issue_key(person.person_id)["key"]
    unknown_key = f"fbk_{token}_{secrets.token_urlsafe(24)}"
    for service, sql in PROBE_INDEXES.items():
        on_database(platform, service, sql)
    try:
        assert api.report(tenant, description=description).status_code == 201
        # The same description again: intake's database refuses the insert.
        refused_incident = api.report(tenant, description=description)
        created = api.http.post(
            "/v1/clients", json={"name": client_name}, headers=api.admin.headers
        )
        assert created.status_code == 201, created.text
        # The same name again: the gateway's own database refuses it.
        refused_client = api.http.post(
            "/v1/clients", json={"name": client_name}, headers=api.admin.headers
        )
    finally:
        for service in PROBE_INDEXES:
            on_database(platform, service, "DROP INDEX leak_probe")
    assert refused_incident.status_code == 502, refused_incident.text
    assert refused_client.status_code == 500, refused_client.text
    for refused in (refused_incident, refused_client):
        assert token not in refused.text and "Meridian" not in refused.text
    duplicate_person = api.http.post(
        "/v1/people",
        json={"name": f"Dup {token}", "email": person.email, "role": "responder"},
        headers=api.admin.headers,
    )
    assert duplicate_person.status_code == 409, duplicate_person.text
    unknown = api.http.get("/v1/incidents", headers={"Authorization": f"Bearer {unknown_key}"})
    assert unknown.status_code == 401, unknown.text
    # Evidence's description travels in the query string, which spans record.
    refused_evidence = api.http.post(
        f"/v1/incidents/{api.report(tenant).json()['id']}/evidence",
        params={"filename": "memo\u202etxt.exe", "description": f"Meridian memo {token}"},
        content=b"memo",
        headers=api.admin.headers | {"Content-Type": "text/plain"},
    )
    assert_problem(refused_evidence, 422, "filename")

    # The errors were logged and put on spans, by type and code.
    def refused_insert_span() -> dict[str, Any] | None:
        return next(
            (
                span
                for span in spans(platform)
                if span["service"] == "firebreak-intake"
                and span["attributes"].get("error.type") == "IntegrityError"
            ),
            None,
        )

    def refused_evidence_span() -> dict[str, Any] | None:
        return next(
            (
                span
                for span in spans(platform)
                if span["name"] == "POST /v1/incidents/{incident_id}/evidence"
                and span["attributes"].get("http.status_code") == 422
            ),
            None,
        )

    span = eventually(refused_insert_span)
    eventually(refused_evidence_span)
    assert span["status"] == "ERROR"
    assert span["attributes"]["db.response.status_code"] in {"23505", "SQLITE_CONSTRAINT_UNIQUE"}
    assert "IntegrityError" in log_text(platform, "intake")
    assert "IntegrityError" in log_text(platform, "gateway")
    # Nothing a client or person submitted is there: not the refused values, not the ones
    # stored, not the keys.
    leaked = files_holding(
        platform, [token, "Meridian", person.email, issued_key, unknown_key, unknown_key[:20]]
    )
    assert leaked == {}


def client_headers(trace_id: str, span_id: str, baggage: str) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id}-{span_id}-01", "baggage": baggage}


@on_backend("sqlite", "platform")
def test_a_clients_trace_is_linked_not_joined_and_its_baggage_dropped(
    api: Api, platform: Platform
) -> None:
    tenant = api.new_client()
    client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
    marker = f"probe{secrets.token_hex(8)}"
    response = api.http.post(
        "/v1/incidents",
        json=incident_body(),
        headers=tenant.headers | client_headers(client_trace, client_span, f"tenant={marker}"),
    )
    assert response.status_code == 201, response.text
    incident = response.json()
    assert incident["trace_id"] != client_trace

    def request_span() -> dict[str, Any] | None:
        return next(
            (
                span
                for span in spans(platform)
                if span["trace_id"] == incident["trace_id"]
                and span["service"] == "firebreak-gateway"
                and span["kind"] == "SERVER"
            ),
            None,
        )

    root = eventually(request_span)
    assert root["parent_span_id"] is None
    assert root["links"] == [{"trace_id": client_trace, "span_id": client_span}]
    assert not [span for span in spans(platform) if span["trace_id"] == client_trace]

    # The incident's events carry its own trace and no baggage.
    def events_of_incident() -> list[dict[str, str]] | None:
        rows = on_database(platform, "intake", "SELECT payload, headers FROM outbox")
        headers = [
            json.loads(row[1])
            for row in rows
            if EventEnvelope.FromString(row[0]).incident_id == incident["id"]
        ]
        return headers or None

    for headers in eventually(events_of_incident):
        assert headers["traceparent"].split("-")[1] == incident["trace_id"]
        assert "baggage" not in headers
    assert files_holding(platform, [marker]) == {}


@on_backend("sqlite", "platform")
def test_an_invalid_client_traceparent_still_gets_a_fresh_trace(api: Api) -> None:
    tenant = api.new_client()
    response = api.http.post(
        "/v1/incidents",
        json=incident_body(),
        headers=tenant.headers | {"traceparent": "00-not-a-trace-01", "baggage": "a=b"},
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["trace_id"]) == 32


@on_backend("sqlite", "platform")
def test_an_incident_cursor_names_an_incident_the_caller_sees(api: Api) -> None:
    ours, theirs = api.new_client(), api.new_client()
    first = api.report(ours).json()["id"]
    for _ in range(3):  # another client's incidents in between tell nothing through the cursor
        assert api.report(theirs).status_code == 201
    api.report(ours)
    page = api.http.get("/v1/incidents", params={"limit": 1}, headers=ours.headers).json()
    cursor = page["next_cursor"]
    named = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    assert named == f"after:{page['items'][0]['id']}"
    following = api.http.get(
        "/v1/incidents", params={"limit": 1, "cursor": cursor}, headers=ours.headers
    ).json()
    assert [item["id"] for item in following["items"]] == [first]
    # Another client cannot page with it: the incident it names is not theirs.
    refused = api.http.get("/v1/incidents", params={"cursor": cursor}, headers=theirs.headers)
    assert_problem(refused, 422, "cursor")


HIDDEN = {
    "escape": "\x1b[2J",
    "bell": "\x07",
    "right-to-left override": "\u202e",
    "zero-width space": "\u200b",
    "byte order mark": "\ufeff",
    "lone carriage return": "\r",
}


@on_backend("sqlite", "platform")
@pytest.mark.parametrize("character", HIDDEN.values(), ids=HIDDEN.keys())
@pytest.mark.parametrize("field", ["title", "description"])
def test_incident_text_refuses_control_and_format_characters(
    api: Api, field: str, character: str
) -> None:
    tenant = api.new_client()
    response = api.report(tenant, **{field: f"Laptop {character}stolen"})
    assert_problem(response, 422, field)
    assert api.list_ids(tenant) == []  # nothing written


@on_backend("sqlite", "platform")
def test_tab_and_line_breaks_stay_where_text_may_span_lines(api: Api) -> None:
    tenant = api.new_client()
    description = (
        "Line one\r\nLine two\n\tindented; \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    )
    created = api.report(tenant, title="Laptop\tstolen", description=description)
    assert created.status_code == 201, created.text
    assert (created.json()["title"], created.json()["description"]) == (
        "Laptop\tstolen",
        description,
    )
    assert_problem(api.report(tenant, title="Laptop\nstolen"), 422, "title")


@on_backend("sqlite", "platform")
def test_names_and_notes_refuse_control_characters(api: Api) -> None:
    client = api.http.post("/v1/clients", json={"name": "Acme\u202eLLP"}, headers=api.admin.headers)
    assert_problem(client, 422, "name")
    person = api.http.post(
        "/v1/people",
        json={"name": "Ada\u200b", "email": "ada-hidden@firm.example", "role": "responder"},
        headers=api.admin.headers,
    )
    assert_problem(person, 422, "name")
    reporter = api.report(api.new_client(), reporter={"name": "Ada", "email": "a\u200b@x.example"})
    assert_problem(reporter, 422, "reporter.email")
    incident = api.report(api.new_client()).json()
    note = api.http.post(
        f"/v1/incidents/{incident['id']}/notes",
        json={"body": "seen at 09:00\x1b]8;;https://evil.example\x07"},
        headers=api.admin.headers,
    )
    assert_problem(note, 422, "body")


@on_backend("sqlite", "platform")
def test_an_evidence_filename_cannot_hide_its_extension(api: Api) -> None:
    """The classic spoof: a right-to-left override makes "invoice\\u202egpj.exe" read as
    "invoiceexe.jpg". Refused before the body is read, so whether the incident exists yet
    does not matter."""
    incident = api.report(api.new_client()).json()
    response = api.http.post(
        f"/v1/incidents/{incident['id']}/evidence",
        params={"filename": "invoice\u202egpj.exe", "description": "line one\nline two"},
        content=b"MZ",
        headers=api.admin.headers | {"Content-Type": "application/octet-stream"},
    )
    assert_problem(response, 422, "filename")


def test_a_logged_traceback_names_a_database_error_by_type_and_keeps_its_frames() -> None:
    # A real driver error, raised through SQLAlchemy without hide_parameters (as a library
    # engine might be) and chained under an error of Firebreak's own: its text quotes the
    # value written, which the log must not.
    secret = f"leak-{secrets.token_hex(8)}@client.example"
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE people (email TEXT UNIQUE)")
        connection.exec_driver_sql("INSERT INTO people VALUES (?)", (secret,))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(DatabaseErrorRedactingFormatter())
    log = logging.getLogger("tests.leaks.formatter")
    log.addHandler(handler)
    try:
        with engine.begin() as connection:
            try:
                connection.exec_driver_sql("INSERT INTO people VALUES (?)", (secret,))
            except sqlalchemy.exc.IntegrityError as error:
                assert secret in str(error)  # what would leak
                raise RuntimeError("could not add the person") from error
    except RuntimeError:
        log.exception("request failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert secret not in text
    assert "sqlalchemy.exc.IntegrityError: IntegrityError" in text  # named, by type
    assert "RuntimeError: could not add the person" in text  # Firebreak's own error kept
    assert "test_a_logged_traceback_names_a_database_error" in text  # and the frames


def test_a_logged_path_hides_the_credential_it_carries() -> None:
    def request(path: str) -> Request:
        return Request({"type": "http", "method": "GET", "path": path, "headers": []})

    key = secrets.token_hex(16)
    assert loggable(request(f"/v1/heartbeats/{key}")) == "/v1/heartbeats/…"
    assert loggable(request(f"/v1/ack/{key}/confirm")) == "/v1/ack/…/confirm"
    assert loggable(request("/v1/incidents/abc")) == "/v1/incidents/abc"
