"""The `firebreak` client commands, run as a person runs them (a subprocess, its own config
directory) against the real gateway and services; and `firebreak trace` against the platform's
span files and a stand-in for Jaeger's query API."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from firebreak.client.trace_tree import Span, build_tree, span_from_record, tree_as_dict
from firebreak.launcher import free_port
from tests.conftest import on_backend
from tests.evidence_client import record
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import finish_containment, report_triaged
from tests.test_evidence_custody import flip_a_byte

FIREBREAK = Path(sys.executable).parent / "firebreak"
# The variables that would point a command elsewhere than each test says.
CONNECTION_VARIABLES = (
    "FIREBREAK_URL",
    "FIREBREAK_KEY",
    "FIREBREAK_ADMIN_KEY",
    "FIREBREAK_PUBLIC_URL",
    "FIREBREAK_JAEGER_URL",
    "FIREBREAK_VAR_DIR",
)
NOTIFIED_FLOW_SERVICES = {
    "firebreak-gateway",
    "firebreak-intake",
    "firebreak-triage",
    "firebreak-notify",
}

sqlite_only = on_backend("sqlite", "platform")  # the CLI sees HTTP only: one backend will do


@dataclass(frozen=True)
class Cli:
    """`firebreak …` as a person at a prompt runs it: their own home and config directory,
    and, when `key` is given, FIREBREAK_URL and FIREBREAK_KEY set."""

    home: Path
    url: str | None = None
    key: str | None = None

    def env(self, **more: str) -> dict[str, str]:
        env = {
            name: value for name, value in os.environ.items() if name not in CONNECTION_VARIABLES
        }
        env |= {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / "config")}
        if self.url:
            env["FIREBREAK_URL"] = self.url
        if self.key:
            env["FIREBREAK_KEY"] = self.key
        return env | more

    def __call__(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FIREBREAK), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=self.home,
            timeout=120,
            check=False,
        )

    def json(self, *args: str) -> Any:
        """The JSON a command that must succeed printed."""
        done = self(*args, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    @property
    def login_file(self) -> Path:
        return self.home / "config" / "firebreak" / "login.json"


def key_of(tenant: Tenant) -> str:
    return tenant.headers["Authorization"].removeprefix("Bearer ")


def cli_as(api: Api, tenant: Tenant, home: Path) -> Cli:
    home.mkdir(exist_ok=True)
    return Cli(home, api.platform.gateway_url, key_of(tenant))


# --- login ------------------------------------------------------------------------------------


@sqlite_only
def test_login_checks_the_key_and_stores_it_for_the_user_alone(api: Api, tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    gateway = api.platform.gateway_url

    nobody = cli("incidents", "list")
    assert nobody.returncode == 4, nobody.stderr
    assert "firebreak login" in nobody.stderr

    refused = cli("login", "--url", gateway, stdin="fbk_not_a_key_of_anyone_at_all\n")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "401" in refused.stderr and "nothing was stored" in refused.stderr
    assert not cli.login_file.parent.exists()

    # The key never goes on the command line, where `ps` shows it.
    on_argv = cli("login", "--url", gateway, "--key", "fbk_x")
    assert on_argv.returncode == 2
    assert "never from the command line" in " ".join(cli("login", "--help").stdout.split())

    tenant = api.new_client()
    key = key_of(tenant)
    logged_in = cli("login", "--url", gateway, stdin=key + "\n")
    assert logged_in.returncode == 0, logged_in.stderr
    assert key not in logged_in.stdout + logged_in.stderr
    assert cli.login_file.stat().st_mode & 0o777 == 0o600
    assert cli.login_file.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(cli.login_file.read_text()) == {"url": gateway, "key": key}

    mine = api.report(tenant).json()
    listed = cli.json("incidents", "list")
    assert [incident["id"] for incident in listed] == [mine["id"]]
    # FIREBREAK_KEY overrides the stored key (and FIREBREAK_URL the stored URL).
    overridden = cli("incidents", "list", FIREBREAK_KEY="fbk_not_a_key_of_anyone_at_all")
    assert overridden.returncode == 1 and "401" in overridden.stderr

    # A bad key tried later leaves the stored login as it was.
    again = cli("login", stdin="fbk_not_a_key_of_anyone_at_all\n")
    assert again.returncode == 1
    assert json.loads(cli.login_file.read_text()) == {"url": gateway, "key": key}


# --- incidents and their timeline -------------------------------------------------------------


@sqlite_only
def test_an_incident_reported_acknowledged_contained_and_resolved_from_the_cli(
    api: Api, tmp_path: Path
) -> None:
    manager = api.new_person("manager")
    cli = cli_as(api, manager, tmp_path)
    title = "Mail relay rejecting every message"
    reported = cli.json(
        "incidents",
        "report",
        "--title",
        title,
        "--description",
        "Bounces since 08:40",
        "--type",
        "service_outage",
        "--impact",
        "significant",
        "--urgency",
        "high",
        "--reporter-name",
        "Ada Lovelace",
        "--reporter-email",
        "ada@firm.example",
        "--asset",
        "mail-relay",
    )
    incident_id = reported["id"]
    assert api.incident(api.admin, incident_id)["affected_assets"] == ["mail-relay"]
    eventually(lambda: api.incident(api.admin, incident_id)["status"] == "triaged")

    assert incident_id in [item["id"] for item in cli.json("incidents", "list", "--limit", "200")]
    table = cli("incidents", "list", "--status", "triaged", "--limit", "200")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if incident_id in line)
    assert reported["reference"] in row and "triaged" in row and title in row
    assert table.stdout.splitlines()[0].split()[:3] == ["REFERENCE", "ID", "STATUS"]

    shown = cli("incidents", "show", incident_id)
    assert shown.returncode == 0, shown.stderr
    assert title in shown.stdout and reported["trace_id"] in shown.stdout

    acknowledged = cli.json("incidents", "ack", incident_id)
    assert acknowledged["status"] == "acknowledged"
    assert api.incident(api.admin, incident_id)["roles"]["incident_commander"]["id"] == (
        manager.person_id
    )

    # Nothing skips a step: the API's 409 is exit 1, its problem on standard error.
    early = cli("incidents", "resolve", incident_id, "--summary", "Relay restarted")
    assert early.returncode == 1, early.stdout + early.stderr
    assert "409 Conflict" in early.stderr and "acknowledged" in early.stderr
    assert api.incident(api.admin, incident_id)["status"] == "acknowledged"

    finish_containment(api, manager, incident_id)
    assert cli.json("incidents", "contain", incident_id, "--summary", "Relay isolated")[
        "status"
    ] == ("contained")
    resolved = cli("incidents", "resolve", incident_id, "--summary", "Relay restarted")
    assert resolved.returncode == 0, resolved.stderr
    assert api.incident(api.admin, incident_id)["status"] == "resolved"

    def commands_on_the_timeline() -> list[dict[str, Any]] | None:
        entries: list[dict[str, Any]] = cli.json("timeline", incident_id)
        types = {entry["type"] for entry in entries}
        return entries if {"incident.reported", "incident.resolved"} <= types else None

    entries = eventually(commands_on_the_timeline)
    assert entries == api.timeline(manager, incident_id)
    printed = cli("timeline", incident_id)
    assert printed.returncode == 0, printed.stderr
    assert "incident.reported" in printed.stdout and "incident.resolved" in printed.stdout

    # A field the API refuses is named.
    invalid = cli(
        "incidents",
        "report",
        *("--title", "x", "--type", "service_outage", "--impact", "minor", "--urgency", "low"),
        *("--reporter-name", "Ada", "--reporter-email", "not an address"),
    )
    assert invalid.returncode == 1
    assert "422" in invalid.stderr and "reporter.email" in invalid.stderr


@sqlite_only
def test_exit_codes_for_a_refusal_and_an_unreachable_gateway(api: Api, tmp_path: Path) -> None:
    owner, other = api.new_client(), api.new_client()
    theirs = api.report(owner).json()["id"]
    cli = cli_as(api, other, tmp_path)

    hidden = cli("incidents", "show", theirs)
    assert hidden.returncode == 1, hidden.stdout + hidden.stderr
    assert "404 Not Found" in hidden.stderr and hidden.stdout == ""
    assert cli("timeline", theirs).returncode == 1

    nowhere = cli("incidents", "list", FIREBREAK_URL=f"http://127.0.0.1:{free_port()}")
    assert nowhere.returncode == 3, nowhere.stderr
    assert "cannot reach the gateway" in nowhere.stderr

    assert cli("incidents", "show", "no/such/route").returncode == 2

    # dead-letters reads the same login: a client's key is refused, an admin's lists.
    assert cli("dead-letters", "list").returncode == 1
    admin = Cli(tmp_path, api.platform.gateway_url, key_of(api.admin))
    assert admin("dead-letters", "list").returncode == 0


# --- evidence ---------------------------------------------------------------------------------


def with_a_terminal(cli: Cli, *args: str) -> tuple[int, str]:
    """Runs a command with its output on a pseudo-terminal: its exit code and what it showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(FIREBREAK), *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env=cli.env(COLUMNS="120"),
        cwd=cli.home,
    )
    os.close(terminal)
    shown = bytearray()
    while True:
        try:
            piece = os.read(controller, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not piece:
            break
        shown += piece
    os.close(controller)
    return process.wait(timeout=120), shown.decode(errors="replace")


@sqlite_only
def test_evidence_added_verified_and_exported_from_the_cli(api: Api, tmp_path: Path) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    cli = cli_as(api, manager, tmp_path)
    content = os.urandom(3 * 1024 * 1024 + 17)  # several of the client's pieces, and a rest
    item_file = tmp_path / "disk image.bin"
    item_file.write_bytes(content)
    sha256 = hashlib.sha256(content).hexdigest()

    def added() -> dict[str, Any] | None:
        # Evidence learns of a new incident from incident.reported, a moment after triage.
        done = cli("evidence", "add", incident, str(item_file), "--source", "laptop", "--json")
        if done.returncode == 1 and "404" in done.stderr:
            return None
        assert done.returncode == 0, done.stderr
        item: dict[str, Any] = json.loads(done.stdout)
        return item

    item = eventually(added)
    assert (item["filename"], item["size_bytes"], item["sha256"]) == (
        "disk image.bin",
        len(content),
        sha256,
    )
    assert record(api, manager, item["id"])["source"] == "laptop"

    # On a terminal, a progress bar; in a pipe (above), none, and the JSON alone.
    code, shown = with_a_terminal(cli, "evidence", "add", incident, str(item_file))
    assert code == 0, shown
    assert "Uploading disk image.bin" in shown and "3.1/3.1 MB" in shown

    verified = cli.json("evidence", "verify", item["id"])
    assert verified["result"] == "intact"

    archive = tmp_path / "export.zip"
    exported = cli.json("evidence", "export", incident, "--output", str(archive))
    assert exported["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert exported["size_bytes"] == archive.stat().st_size
    with zipfile.ZipFile(archive) as opened:
        manifest = json.loads(opened.read("manifest.json"))
        listed = {entry["evidence_id"]: entry for entry in manifest["items"]}
        path = listed[item["id"]]["content"]["path"]
        assert hashlib.sha256(opened.read(path)).hexdigest() == sha256
    # The same `verify`, given the file, checks the export offline.
    offline = cli("evidence", "verify", str(archive))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "INTACT: every check passed." in offline.stdout
    kept = cli("evidence", "export", incident, "--output", str(archive))
    assert kept.returncode == 2 and "exists" in kept.stderr
    assert exported["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()

    flip_a_byte(api.platform, sha256)
    tampered = cli("evidence", "verify", item["id"])
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "TAMPERED" in tampered.stdout and "chunk 0 fails authentication" in tampered.stdout


# --- on call ----------------------------------------------------------------------------------


@sqlite_only
def test_schedules_who_names_who_is_on_call_now(api: Api, tmp_path: Path) -> None:
    responder = api.new_person("responder", name="Rhea Rota")
    created = api.http.post(
        "/v1/schedules",
        json={
            "name": f"CLI rota {responder.person_id[:8]}",
            "timezone": "Europe/London",
            "layers": [
                {
                    "participants": [responder.person_id],
                    "rotation": "weekly",
                    "handoff_time": "09:00",
                    "starts_at": "2020-01-06T09:00:00Z",
                }
            ],
            "overrides": [],
        },
        headers=api.admin.headers,
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    cli = cli_as(api, responder, tmp_path)

    every = {answer["schedule_id"]: answer for answer in cli.json("schedules", "who")}
    assert every[schedule["id"]]["person"] == {"id": responder.person_id, "name": "Rhea Rota"}
    assert every[schedule["id"]]["schedule"]["name"] == schedule["name"]
    assert "default" in every  # the firm's default schedule, which the shipped policies page

    one = cli("schedules", "who", schedule["id"])
    assert one.returncode == 0, one.stderr
    row = next(line for line in one.stdout.splitlines() if schedule["id"] in line)
    assert "Rhea Rota" in row and "layer 0" in row
    assert cli("schedules", "who", "no-such-schedule").returncode == 1


# --- trace ------------------------------------------------------------------------------------


def notified_incident(api: Api, tmp_path: Path) -> tuple[Cli, dict[str, Any]]:
    tenant = api.new_client()
    incident = api.report(tenant).json()
    api.wait_until_notified(tenant, incident["id"])
    return cli_as(api, tenant, tmp_path), incident


def whole_tree(cli: Cli, *args: str) -> dict[str, Any]:
    """`trace --json` once the spans of the flow to notification are all on disk, under one
    root (each process exports on its own schedule)."""

    def complete() -> dict[str, Any] | None:
        tree: dict[str, Any] = cli.json("trace", *args)
        services = {node["service"] for node in nodes(tree)}
        whole = NOTIFIED_FLOW_SERVICES <= services and len(tree["roots"]) == 1
        return tree if whole else None

    return eventually(complete)  # type: ignore[no-any-return]


def nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pending = list(tree["roots"])
    while pending:
        node = pending.pop()
        yield node
        pending += node["children"]


def by_name(tree: dict[str, Any], service: str, name: str) -> dict[str, Any]:
    found = [n for n in nodes(tree) if (n["service"], n["name"]) == (service, name)]
    assert len(found) == 1, (service, name, found)
    return found[0]


@sqlite_only
def test_trace_prints_the_incidents_tree_from_the_span_files(api: Api, tmp_path: Path) -> None:
    cli, incident = notified_incident(api, tmp_path)
    traces = str(api.platform.var_dir / "traces")
    tree = whole_tree(cli, incident["id"], "--traces", traces)

    assert tree["trace_id"] == incident["trace_id"] and tree["source"] == traces
    [root] = tree["roots"]
    assert (root["service"], root["name"], root["offset_ms"]) == (
        "firebreak-gateway",
        "POST /v1/incidents",
        0.0,
    )
    for node in nodes(tree):
        offsets = [child["offset_ms"] for child in node["children"]]
        assert offsets == sorted(offsets)
        assert all(offset >= node["offset_ms"] for offset in offsets)
    reported = "firebreak.events.v1.incident.reported"
    publish = by_name(tree, "firebreak-intake", f"publish {reported}")
    consume = by_name(tree, "firebreak-triage", f"process {reported}")
    assert consume in publish["children"]
    assert consume["hop"]["via"] == "on the bus"
    rpc = "/firebreak.intake.v1.IntakeService/ReportIncident"
    assert by_name(tree, "firebreak-intake", rpc)["hop"]["via"] == "in transit"
    assert by_name(tree, "firebreak-gateway", rpc)["hop"] is None  # the same service

    printed = cli("trace", incident["id"], "--traces", traces)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert incident["reference"] in lines[0] and incident["trace_id"] in lines[0]
    assert lines[1].split()[:4] == ["START", "ms", "DURATION", "ms"]
    assert "POST /v1/incidents" in lines[2]
    assert all(f" {service} " in printed.stdout for service in NOTIFIED_FLOW_SERVICES)
    triage_line = next(line for line in lines if f"process {reported}" in line and "triage" in line)
    assert "└─" in triage_line or "├─" in triage_line
    assert "ms on the bus" in triage_line
    # Where `make run` writes them, unless told: the var dir of FIREBREAK_VAR_DIR.
    default = cli("trace", incident["id"], "--json", FIREBREAK_VAR_DIR=str(api.platform.var_dir))
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["span_count"] >= tree["span_count"]

    empty = tmp_path / "no-traces"
    empty.mkdir()
    nothing = cli("trace", incident["id"], "--traces", str(empty))
    assert nothing.returncode == 1 and "no spans" in nothing.stderr


def as_jaeger(trace_id: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """The trace as Jaeger's query API answers GET /api/traces/{traceID} (its model/json):
    times in µs, the parent as a CHILD_OF reference, services under processes."""
    processes = {
        service: f"p{index}"
        for index, service in enumerate(sorted({span["service"] for span in spans}), 1)
    }
    return {
        "data": [
            {
                "traceID": trace_id,
                "spans": [
                    {
                        "traceID": trace_id,
                        "spanID": span["span_id"],
                        "operationName": span["name"],
                        "references": [
                            {"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}
                            for parent in [span["parent_span_id"]]
                            if parent
                        ],
                        "startTime": span["start_ns"] // 1000,
                        "duration": (span["end_ns"] - span["start_ns"]) // 1000,
                        "tags": [
                            {"key": "span.kind", "type": "string", "value": span["kind"].lower()}
                        ],
                        "logs": [],
                        "processID": processes[span["service"]],
                        "warnings": None,
                    }
                    for span in spans
                ],
                "processes": {
                    process: {"serviceName": service, "tags": []}
                    for service, process in processes.items()
                },
                "warnings": None,
            }
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


@dataclass
class JaegerStandIn:
    """A stand-in for Jaeger's query service (which this machine cannot run): GET
    /api/traces/{traceID} answers the traces it holds, in Jaeger's JSON, else Jaeger's 404."""

    traces: dict[str, dict[str, Any]]
    asked: list[str]
    url: str = ""


@pytest.fixture
def jaeger() -> Iterator[JaegerStandIn]:
    stand_in = JaegerStandIn(traces={}, asked=[])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stand_in.asked.append(self.path)
            trace_id = self.path.removeprefix("/api/traces/")
            found = stand_in.traces.get(trace_id)
            status = 200 if found else 404
            body = found or {"data": None, "errors": [{"code": 404, "msg": "trace not found"}]}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()


def shape(node: dict[str, Any]) -> tuple[Any, ...]:
    """What a tree says whatever the source: who, what, under whom, which hops."""
    hop = node["hop"]["via"] if node["hop"] else None
    children = tuple(sorted(shape(child) for child in node["children"]))
    return (node["service"], node["name"], node["kind"], hop, children)


@sqlite_only
def test_trace_from_a_jaeger_query_api(api: Api, tmp_path: Path, jaeger: JaegerStandIn) -> None:
    cli, incident = notified_incident(api, tmp_path)
    traces = api.platform.var_dir / "traces"
    whole_tree(cli, incident["id"], "--traces", str(traces))
    trace_id = incident["trace_id"]
    records = [
        json.loads(line)
        for path in traces.glob("*.jsonl")
        for line in path.read_text().splitlines()
        if trace_id in line
    ]
    jaeger.traces[trace_id] = as_jaeger(trace_id, records)

    from_jaeger = cli.json("trace", incident["id"], "--jaeger", jaeger.url)
    assert jaeger.asked == [f"/api/traces/{trace_id}"]
    assert from_jaeger["source"] == jaeger.url
    # The same spans read from the files make the same tree.
    from_files = tree_as_dict(build_tree(trace_id, map(span_from_record, records)))
    assert from_jaeger["span_count"] == from_files["span_count"]
    assert [shape(root) for root in from_jaeger["roots"]] == [
        shape(root) for root in from_files["roots"]
    ]
    assert NOTIFIED_FLOW_SERVICES <= set(from_jaeger["services"])
    # FIREBREAK_JAEGER_URL says the same as --jaeger.
    printed = cli("trace", incident["id"], FIREBREAK_JAEGER_URL=jaeger.url)
    assert printed.returncode == 0, printed.stderr
    assert "ms on the bus" in printed.stdout and "firebreak-notify" in printed.stdout

    del jaeger.traces[trace_id]
    missing = cli("trace", incident["id"], "--jaeger", jaeger.url)
    assert missing.returncode == 1 and f"no spans of trace {trace_id}" in missing.stderr
    down = cli("trace", incident["id"], "--jaeger", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 3 and "cannot reach Jaeger" in down.stderr


# --- the tree itself (pure) -------------------------------------------------------------------


def span(span_id: str, parent: str | None, service: str, kind: str, start: int, end: int) -> Span:
    """A span with its times in ms from 0."""
    return Span(span_id, parent, service, f"op {span_id}", kind, start * 10**6, end * 10**6)


def test_the_tree_orders_children_by_start_and_measures_hops_between_services() -> None:
    tree = build_tree(
        "t",
        [
            span("consumer", "publish", "triage", "CONSUMER", 40, 45),  # after the publish
            span("server", "client", "intake", "SERVER", 3, 9),  # while the call waited
            span("publish", "server", "intake", "PRODUCER", 5, 8),
            span("root", None, "gateway", "SERVER", 0, 10),
            span("client", "root", "gateway", "CLIENT", 1, 10),
            span("late", "root", "gateway", "INTERNAL", 2, 3),
            span("orphan", "gone", "review", "CONSUMER", 50, 51),
            span("command", "server", "gateway", "INTERNAL", 20, 21),  # joins the trace later
        ],
    )
    data = tree_as_dict(tree)
    assert (data["span_count"], data["duration_ms"]) == (8, 51.0)
    assert data["services"] == ["gateway", "intake", "triage", "review"]
    root, orphan = data["roots"]
    assert (root["span_id"], root["orphan"], orphan["span_id"], orphan["orphan"]) == (
        "root",
        False,
        "orphan",
        True,
    )
    assert [child["span_id"] for child in root["children"]] == ["client", "late"]
    client = root["children"][0]
    server = client["children"][0]
    assert (client["hop"], server["hop"]) == (None, {"ms": 2.0, "via": "in transit"})
    publish, command = server["children"]
    assert (publish["span_id"], publish["hop"]) == ("publish", None)
    assert command["hop"] == {"ms": 11.0, "via": "later"}
    consumer = publish["children"][0]
    assert (consumer["offset_ms"], consumer["duration_ms"]) == (40.0, 5.0)
    assert consumer["hop"] == {"ms": 32.0, "via": "on the bus"}
