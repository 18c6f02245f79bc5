"""Every service answers grpc.health.v1; the gateway answers /healthz, /readyz, /status and
/docs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from firebreak.launcher import free_port
from firebreak.scope_token import public_key_text
from firebreak.settings import GRPC_SERVICES
from tests.conftest import NatsServer
from tests.gateway_client import Api, eventually


def overall_health(address: str) -> int | None:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


def test_every_grpc_service_reports_serving(api: Api) -> None:
    for service in GRPC_SERVICES:
        address = f"127.0.0.1:{api.platform.grpc_ports[service]}"
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            overall = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert overall.status == health_pb2.HealthCheckResponse.SERVING, service
            named = f"firebreak.{service}.v1.{service.capitalize()}Service"
            specific = stub.Check(health_pb2.HealthCheckRequest(service=named), timeout=5)
            assert specific.status == health_pb2.HealthCheckResponse.SERVING, named


def test_gateway_health_readiness_and_docs(api: Api) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    ready = api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True}
    status = api.http.get("/status").json()  # no key: states only
    assert status["database"] is True
    assert status["nats"]["connected"] is True
    assert status["services"] == dict.fromkeys(GRPC_SERVICES, "SERVING")
    assert api.http.get("/docs").status_code == 200
    schema = api.http.get("/openapi.json").json()
    assert "/v1/incidents" in schema["paths"]


def test_a_service_runs_as_the_chart_configures_it(nats_server: NatsServer, tmp_path: Path) -> None:
    """In a pod: listening on all interfaces while callers use the Service's name, no trace
    files without a collector, and a clean exit on the SIGTERM Kubernetes sends."""
    port = free_port()
    env = {
        **os.environ,
        "FIREBREAK_VAR_DIR": str(tmp_path / "var"),
        "FIREBREAK_NATS_URL": nats_server.url,
        "FIREBREAK_GRPC_LISTEN_ADDR": f"[::]:{port}",
        "FIREBREAK_TRIAGE_ADDR": "fb-firebreak-triage:50051",
        "FIREBREAK_INSTANCE_ID": "fb-firebreak-triage-7d9f-abcde",
        "FIREBREAK_SCOPE_TOKEN_PUBLIC_KEY": public_key_text(Ed25519PrivateKey.generate()),
        "OTEL_SERVICE_NAME": "firebreak-triage",
        "OTEL_TRACES_EXPORTER": "none",
    }
    triage = subprocess.Popen(
        [sys.executable, "-m", "firebreak.cli", "serve", "triage"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        serving = health_pb2.HealthCheckResponse.SERVING
        eventually(lambda: overall_health(f"127.0.0.1:{port}") == serving, timeout=20)
        assert overall_health(f"[::1]:{port}") == serving  # all interfaces, IPv6 too
    finally:
        triage.send_signal(signal.SIGTERM)
        output, _ = triage.communicate(timeout=20)
    assert triage.returncode == 0, output
    assert f"triage serving gRPC on [::]:{port}" in output
    assert not (tmp_path / "var" / "traces").exists() or not any(
        (tmp_path / "var" / "traces").iterdir()
    )
