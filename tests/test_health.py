"""Every service answers grpc.health.v1; the gateway answers /healthz, /readyz and /docs."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from firebreak.settings import GRPC_SERVICES
from tests.gateway_client import Api


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
    assert ready.json()["checks"] == {"nats": True, "intake": True}
    assert api.http.get("/docs").status_code == 200
    schema = api.http.get("/openapi.json").json()
    assert "/v1/incidents" in schema["paths"]
