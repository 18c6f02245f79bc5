"""`make run` starts it all, prints how to use it, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx

from firebreak.launcher import free_ports
from firebreak.settings import GRPC_SERVICES
from tests.gateway_client import incident_body

REPOSITORY = Path(__file__).resolve().parents[1]


def test_make_run_prints_url_and_keys_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    gateway_port, nats_port, mail_port, inbound_port, *grpc_ports = free_ports(
        4 + len(GRPC_SERVICES)
    )
    var_dir = tmp_path / "var"
    env = dict(
        os.environ,
        FIREBREAK_VAR_DIR=str(var_dir),
        FIREBREAK_GATEWAY_PORT=str(gateway_port),
        FIREBREAK_LOCAL_NATS_PORT=str(nats_port),
        FIREBREAK_LOCAL_SMTP_PORT=str(mail_port),
        FIREBREAK_INBOUND_SMTP_PORT=str(inbound_port),
    )
    env.pop("FIREBREAK_SMTP_HOST", None)
    env.pop("FIREBREAK_NATS_URL", None)
    env.pop("FIREBREAK_ADMIN_KEY", None)
    for service, port in zip(GRPC_SERVICES, grpc_ports, strict=True):
        env[f"FIREBREAK_{service.upper()}_ADDR"] = f"127.0.0.1:{port}"
    # The README's command, in its own process group as a terminal would run it.
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            output.append(line)
            if line.startswith("Press Ctrl-C to stop.") or not line:  # ready, or it ended
                break
        text = "".join(output)
        assert f"http://127.0.0.1:{gateway_port}" in text, text[-3000:]
        demo_key = re.search(r"demo key\s+(\S+)", text)
        # The admin key is generated once into a private file, which the banner names; the
        # key itself is shown nowhere (what a terminal shows may end up in a log).
        key_file = re.search(r"admin key\s+in (\S+)", text)
        assert demo_key is not None and key_file is not None, text[-3000:]
        assert Path(key_file.group(1)) == var_dir / "admin-key"
        assert stat.S_IMODE(Path(key_file.group(1)).stat().st_mode) == 0o600
        admin_key = Path(key_file.group(1)).read_text().strip()
        assert admin_key.startswith("fbk_")
        # Intake takes reports by email, and the banner says where.
        assert f"smtp://127.0.0.1:{inbound_port}, to <an email integration's key>@" in text
        # The console, and a one-time link with which the local admin sets a password.
        link = re.search(r"first sign-in: (\S+)", text)
        assert f"console      http://127.0.0.1:{gateway_port}/console" in text, text[-3000:]
        assert link is not None, text[-3000:]
        sign_in_with_link(link.group(1))
        for label in ("intake", "triage", "notify", "evidence", "review", "gateway", "nats"):
            assert f"{label:>8} | " in text, label  # each process's log, prefixed

        created = page_someone(gateway_port, text, admin_key, demo_key.group(1))
        # The page reaches the local catch-all SMTP server, which prints it for all to see.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and f"[P2] {created['reference']}" not in line:
            line = process.stdout.readline()
            output.append(line)
        assert line.startswith("    mail | ") and created["reference"] in line, line
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        rest, _ = process.communicate(timeout=30)  # returns once the launcher closed stdout
    assert "Firebreak stopped." in rest
    assert processes_started_for(var_dir) == []
    assert admin_key not in "".join(output) + rest
    for written in (var_dir / "logs").iterdir():
        assert admin_key not in written.read_text(errors="replace"), written


def sign_in_with_link(link: str) -> None:
    """The link's page sets a password and signs in: the console's board answers."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        form = browser.get(link)
        token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token is not None, form.text
        password = "local admin password"
        done = browser.post(
            link,
            data={"sign_in_token": token.group(1), "password": password, "confirmation": password},
        )
        assert done.status_code == 200 and done.url.path == "/console", done.text
        assert "Open incidents" in done.text


def page_someone(gateway_port: int, banner: str, admin_key: str, demo_key: str) -> dict[str, str]:
    """A responder, a policy that pages them for the demo client's P2s, and a P2."""
    base = f"http://127.0.0.1:{gateway_port}"
    demo_client = re.search(r"demo client\s+(\S+)", banner)
    assert demo_client is not None
    admin = {"Authorization": f"Bearer {admin_key}"}
    person = httpx.post(
        f"{base}/v1/people",
        json={"name": "Ada Oncall", "email": "ada@firm.example", "role": "responder"},
        headers=admin,
    )
    assert person.status_code == 201, person.text
    policy = httpx.post(
        f"{base}/v1/escalation-policies",
        json={
            "name": "Demo P2",
            "client_id": demo_client.group(1),
            "priorities": ["P2"],
            "steps": [{"targets": [{"person_id": person.json()["id"]}], "after_minutes": 30}],
        },
        headers=admin,
    )
    assert policy.status_code == 201, policy.text
    created = httpx.post(
        f"{base}/v1/incidents",
        json=incident_body(),  # significant and high: a P2
        headers={"Authorization": f"Bearer {demo_key}"},
    )
    assert created.status_code == 201
    body: dict[str, str] = created.json()
    return body


def processes_started_for(var_dir: Path) -> list[int]:
    """Live processes whose environment points at this platform's var directory."""
    marker = f"FIREBREAK_VAR_DIR={var_dir}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found
