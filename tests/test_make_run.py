"""`make run` starts it all, prints how to use it, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from firebreak.launcher import free_ports
from firebreak.settings import GRPC_SERVICES
from tests.gateway_client import incident_body

REPOSITORY = Path(__file__).resolve().parents[1]


def test_make_run_prints_url_and_keys_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    gateway_port, nats_port, *grpc_ports = free_ports(2 + len(GRPC_SERVICES))
    var_dir = tmp_path / "var"
    env = dict(
        os.environ,
        FIREBREAK_VAR_DIR=str(var_dir),
        FIREBREAK_GATEWAY_PORT=str(gateway_port),
        FIREBREAK_LOCAL_NATS_PORT=str(nats_port),
    )
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
        assert demo_key is not None and re.search(r"admin key\s+fbk_\S+", text)
        for label in ("intake", "triage", "notify", "evidence", "review", "gateway", "nats"):
            assert f"{label:>8} | " in text, label  # each process's log, prefixed

        created = httpx.post(
            f"http://127.0.0.1:{gateway_port}/v1/incidents",
            json=incident_body(),
            headers={"Authorization": f"Bearer {demo_key.group(1)}"},
        )
        assert created.status_code == 201
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        rest, _ = process.communicate(timeout=30)  # returns once the launcher closed stdout
    assert "Firebreak stopped." in rest
    assert processes_started_for(var_dir) == []


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
