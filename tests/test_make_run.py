"""`firebreak run` (what `make run` calls) starts it all, prints how to use it, stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from firebreak.launcher import free_port
from firebreak.settings import GRPC_SERVICES
from tests.gateway_client import incident_body


def test_run_prints_url_and_keys_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    gateway_port = free_port()
    var_dir = tmp_path / "var"
    env = dict(
        os.environ,
        FIREBREAK_VAR_DIR=str(var_dir),
        FIREBREAK_GATEWAY_PORT=str(gateway_port),
        FIREBREAK_LOCAL_NATS_PORT=str(free_port()),
    )
    env.pop("FIREBREAK_NATS_URL", None)
    env.pop("FIREBREAK_ADMIN_KEY", None)
    for service in GRPC_SERVICES:
        env[f"FIREBREAK_{service.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "firebreak.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            output.append(line)
            if line.startswith("Press Ctrl-C to stop."):
                break
        text = "".join(output)
        assert f"http://127.0.0.1:{gateway_port}" in text
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
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "stopping" in rest
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
