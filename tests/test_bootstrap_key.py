"""The bootstrap admin key: the gateway will not start without one, never writes the one it is
given anywhere, and `make run`'s own is generated once into a file only its owner can read."""

from __future__ import annotations

import secrets
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from firebreak.launcher import Platform, free_ports
from firebreak.local import ADMIN_KEY_FILE, local_admin_key
from firebreak.settings import GRPC_SERVICES
from tests.conftest import lone_gateway


def test_the_gateway_refuses_to_start_without_an_admin_key(tmp_path: Path) -> None:
    gateway_port, nats_port, *grpc_ports = free_ports(2 + len(GRPC_SERVICES))
    platform = Platform(
        var_dir=tmp_path,
        nats_port=nats_port,
        gateway_port=gateway_port,
        grpc_ports=dict(zip(GRPC_SERVICES, grpc_ports, strict=True)),
        admin_key="unused: removed from the environment below",
        start_nats=False,
    )
    env = platform.service_env()  # everything else the gateway needs, as the launcher gives it
    del env["FIREBREAK_ADMIN_KEY"]
    refused = subprocess.run(
        [sys.executable, "-m", "firebreak.cli", "serve", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "FIREBREAK_ADMIN_KEY is not set" in refused.stderr
    assert "Traceback" not in refused.stderr  # the operator's to fix: one line, not a crash
    assert not (tmp_path / "gateway.db").exists()  # refused before touching anything


def test_the_gateway_installs_the_key_it_is_given_and_writes_it_nowhere(tmp_path: Path) -> None:
    admin_key = "fbk_bootstrap_" + secrets.token_urlsafe(24)
    with lone_gateway(tmp_path, admin_key=admin_key, env={}) as gateway:
        admin = httpx.get(
            f"{gateway.gateway_url}/v1/api-keys",
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        assert admin.status_code == 200, admin.text
        assert all(admin_key not in str(key) for key in admin.json()["items"])
        wrong_key = admin_key[:-1] + ("y" if admin_key.endswith("x") else "x")  # always differs
        wrong = httpx.get(
            f"{gateway.gateway_url}/v1/api-keys",
            headers={"Authorization": f"Bearer {wrong_key}"},
        )
        assert wrong.status_code == 401
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.parent.name == "logs" for path in written)  # the gateway's log is there
    for path in written:  # logs, traces, the database (which holds only the key's hash)
        assert admin_key.encode() not in path.read_bytes(), path


def test_make_run_generates_its_key_once_into_a_private_file(tmp_path: Path) -> None:
    key = local_admin_key(tmp_path)
    saved = tmp_path / ADMIN_KEY_FILE
    assert key.startswith("fbk_") and len(key) >= 24
    assert saved.read_text().strip() == key
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert local_admin_key(tmp_path) == key  # the next start reuses it


def test_make_run_uses_a_key_left_in_the_var_dir(tmp_path: Path) -> None:
    chosen = "fbk_" + secrets.token_urlsafe(32)
    (tmp_path / ADMIN_KEY_FILE).write_text(chosen + "\n")
    assert local_admin_key(tmp_path) == chosen


def test_only_the_gateway_is_given_the_admin_key(platform: Platform) -> None:
    # The launcher gives each process what the chart gives its pod: a service that never uses
    # the key must not be able to leak it (its environment, a core dump, /proc).
    def environment(label: str) -> dict[str, str]:
        raw = Path(f"/proc/{platform.processes[label].pid}/environ").read_bytes()
        return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if "=" in entry)

    assert environment("gateway")["FIREBREAK_ADMIN_KEY"] == platform.admin_key
    for name in GRPC_SERVICES:
        assert "FIREBREAK_ADMIN_KEY" not in environment(name), name
        assert "FIREBREAK_SCOPE_TOKEN_KEY" not in environment(name), name
