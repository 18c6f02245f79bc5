"""Behind the gateway: a service answers only calls carrying a scope token the gateway signed,
and only within that token's clients; with FIREBREAK_GRPC_TLS_* set, only over mTLS, while
the probes ask a plaintext port that serves grpc.health.v1 alone (FIREBREAK_GRPC_HEALTH_PORT).

The scope tests call the session platform's real services straight on their gRPC ports, as a
pod in the cluster could. The mTLS tests run firebreak's own server (create_server, with the
scope check) and the gateway's own channel, with a CA and certificates made at run time; the
health port test starts one more intake replica of the session platform with them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.api.intake.v1 import intake_pb2, intake_pb2_grpc
from firebreak.grpc_channels import open_channel
from firebreak.grpc_server import LIVENESS_SERVICE, create_server
from firebreak.grpc_tls import channel_credentials, server_credentials
from firebreak.launcher import Platform, free_port, free_ports
from firebreak.scope_token import (
    LIFETIME_SECONDS,
    METADATA_KEY,
    REUSE_SECONDS,
    Scope,
    ScopeTokens,
    current_scope,
    private_key,
)
from firebreak.settings import Settings
from tests.conftest import on_backend
from tests.gateway_client import Api, Tenant
from tests.lifecycle_client import report_triaged
from tests.test_bus_auth import _issue
from tests.test_evidence import COLLECTOR


@dataclass(frozen=True)
class Caller:
    """Calls one service's port with the token `token` returns (None: with none)."""

    platform: Platform
    token: Callable[[], str | None]

    def call(self, service: str, method: str, request: Any) -> Any:
        stubs = {
            "intake": intake_pb2_grpc.IntakeServiceStub,
            "evidence": evidence_pb2_grpc.EvidenceServiceStub,
        }
        token = self.token()
        metadata = () if token is None else ((METADATA_KEY, f"Bearer {token}"),)
        with grpc.insecure_channel(f"127.0.0.1:{self.platform.grpc_ports[service]}") as channel:
            return getattr(stubs[service](channel), method)(request, metadata=metadata, timeout=10)


def refused(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    code: grpc.StatusCode = caught.value.code()  # type: ignore[attr-defined]
    return code


@pytest.fixture(scope="module")
def two_clients(api: Api) -> tuple[Tenant, Tenant, str]:
    """Clients A and B, and an incident of A's."""
    client_a, client_b = api.new_client("A Ltd"), api.new_client("B Ltd")
    return client_a, client_b, report_triaged(api, client_a)


def for_client(platform: Platform, client_id: str) -> Caller:
    return Caller(platform, lambda: platform.scope_token(frozenset({client_id})))


def test_a_call_without_a_token_is_unauthenticated(
    api: Api, two_clients: tuple[Tenant, Tenant, str]
) -> None:
    client_a, _, incident_id = two_clients
    anonymous = Caller(api.platform, lambda: None)
    request = intake_pb2.GetIncidentRequest(incident_id=incident_id, client_id=client_a.id)
    assert refused(lambda: anonymous.call("intake", "GetIncident", request)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    listing = intake_pb2.ListIncidentsRequest(all_clients=True)
    assert refused(lambda: anonymous.call("intake", "ListIncidents", listing)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_a_token_for_one_client_reads_that_client_only(
    api: Api, two_clients: tuple[Tenant, Tenant, str]
) -> None:
    client_a, client_b, incident_id = two_clients
    as_a = for_client(api.platform, client_a.id)
    own = as_a.call(
        "intake",
        "GetIncident",
        intake_pb2.GetIncidentRequest(incident_id=incident_id, client_id=client_a.id),
    )
    assert own.id == incident_id and own.client_id == client_a.id
    beyond = [
        intake_pb2.GetIncidentRequest(incident_id=incident_id, all_clients=True),
        intake_pb2.GetIncidentRequest(incident_id=incident_id, client_id=client_b.id),
        intake_pb2.ListIncidentsRequest(all_clients=True),
        intake_pb2.ListIncidentsRequest(client_ids=[client_a.id, client_b.id]),
    ]
    for request in beyond:
        method = (
            "GetIncident"
            if isinstance(request, intake_pb2.GetIncidentRequest)
            else ("ListIncidents")
        )
        assert refused(lambda: as_a.call("intake", method, request)) == (  # noqa: B023
            grpc.StatusCode.PERMISSION_DENIED
        ), request


def test_a_token_for_one_client_cannot_write_as_another(
    api: Api, two_clients: tuple[Tenant, Tenant, str]
) -> None:
    client_a, client_b, incident_id = two_clients
    as_a = for_client(api.platform, client_a.id)
    report = intake_pb2.ReportIncidentRequest(
        client_id=client_b.id, title="Forged", description="as B", type="malware"
    )
    assert refused(lambda: as_a.call("intake", "ReportIncident", report)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # A streamed upload: its first message names the client inside its metadata.
    upload = [
        evidence_pb2.CollectEvidenceRequest(
            metadata=evidence_pb2.ItemMetadata(
                client_id=client_b.id,
                incident_id=incident_id,
                filename="forged.log",
                acquisition="copy",
                collector=COLLECTOR,
            )
        ),
        evidence_pb2.CollectEvidenceRequest(chunk=b"forged"),
    ]
    assert refused(lambda: as_a.call("evidence", "CollectEvidence", iter(upload))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_an_expired_token_or_one_signed_by_another_key_is_unauthenticated(
    api: Api, two_clients: tuple[Tenant, Tenant, str]
) -> None:
    client_a, _, incident_id = two_clients
    scope = Scope(subject="someone", role="admin", clients=None)
    now = int(time.time())
    gateway_key = ScopeTokens(private_key(api.platform.scope_token_key))
    expired = gateway_key.sign(scope, issued_at=now - 120, expires_at=now - 60)
    foreign = ScopeTokens(Ed25519PrivateKey.generate()).token(scope)
    request = intake_pb2.GetIncidentRequest(incident_id=incident_id, client_id=client_a.id)
    for token in (expired, foreign, "not-a-jwt"):
        caller = Caller(api.platform, lambda token=token: token)  # type: ignore[misc]
        assert refused(lambda: caller.call("intake", "GetIncident", request)) == (  # noqa: B023
            grpc.StatusCode.UNAUTHENTICATED
        )


def test_through_the_gateway_a_client_key_reads_its_own_incident_only(
    api: Api, two_clients: tuple[Tenant, Tenant, str]
) -> None:
    """The gateway sends a client's own client_id, never all_clients, for a client's key."""
    client_a, client_b, incident_id = two_clients
    assert api.incident(client_a, incident_id)["id"] == incident_id
    other = api.http.get(f"/v1/incidents/{incident_id}", headers=client_b.headers)
    assert other.status_code == 404, other.text


def test_a_principals_token_is_reused_for_30_seconds_then_renewed() -> None:
    now = [1_000_000.0]
    key = Ed25519PrivateKey.generate()
    tokens = ScopeTokens(key, clock=lambda: now[0])
    scope = Scope(subject="person-1", role="responder", clients=None)
    first = tokens.token(scope)
    now[0] += REUSE_SECONDS - 1
    assert tokens.token(scope) == first
    assert tokens.token(Scope(subject="person-2", role="responder", clients=None)) != first
    now[0] += 1
    renewed = tokens.token(scope)
    assert renewed != first
    # The test's clock is not the real one: the claims are read, not their times checked.
    claims = jwt.decode(
        renewed,
        key.public_key(),
        algorithms=["EdDSA"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["exp"] - claims["iat"] == LIFETIME_SECONDS
    assert (claims["sub"], claims["role"], claims["clients"]) == ("person-1", "responder", "*")


# --- mTLS -------------------------------------------------------------------------------------


class Echo(intake_pb2_grpc.IntakeServiceServicer):
    async def GetIncident(
        self, request: intake_pb2.GetIncidentRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Incident:
        return intake_pb2.Incident(id=request.incident_id, client_id=request.client_id)


@dataclass(frozen=True)
class TlsService:
    address: str
    ca: Path
    gateway: Settings  # the gateway's: the CA, and its client certificate
    tokens: ScopeTokens


def tls_settings(directory: Path, own: str) -> Settings:
    return Settings(
        grpc_tls_ca=directory / "ca.crt",
        grpc_tls_cert=directory / f"{own}.crt",
        grpc_tls_key=directory / f"{own}.key",
    )


def issue_certificates(directory: Path) -> None:
    """ca.crt, and a certificate and key it signed for intake (a server on 127.0.0.1) and for
    the gateway (its client)."""
    ca = _issue(directory, "ca")
    _issue(directory, "intake", signer=ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(directory, "gateway", signer=ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)


@pytest.fixture
async def tls_service(tmp_path: Path) -> AsyncIterator[TlsService]:
    issue_certificates(tmp_path)
    signing_key = Ed25519PrivateKey.generate()
    server, _ = create_server(scope_key=signing_key.public_key())
    intake_pb2_grpc.add_IntakeServiceServicer_to_server(Echo(), server)
    address = f"127.0.0.1:{free_port()}"
    credentials = server_credentials(tls_settings(tmp_path, "intake"))
    assert credentials is not None
    server.add_secure_port(address, credentials)
    await server.start()
    yield TlsService(
        address, tmp_path / "ca.crt", tls_settings(tmp_path, "gateway"), ScopeTokens(signing_key)
    )
    await server.stop(None)


async def test_with_the_ca_signed_certificate_and_a_token_a_call_is_answered(
    tls_service: TlsService,
) -> None:
    current_scope.set(Scope(subject="admin-key", role="admin", clients=None))
    channel = open_channel(
        f"ipv4:{tls_service.address}",
        intake_pb2.DESCRIPTOR,
        tokens=tls_service.tokens,
        credentials=channel_credentials(tls_service.gateway),
    )
    try:
        answer = await intake_pb2_grpc.IntakeServiceStub(channel).GetIncident(
            intake_pb2.GetIncidentRequest(incident_id="i-1", all_clients=True), timeout=10
        )
    finally:
        await channel.close()
    assert answer.id == "i-1"


@pytest.mark.parametrize("without", ["tls", "client certificate"])
async def test_a_client_without_a_certificate_is_refused(
    tls_service: TlsService, without: str
) -> None:
    credentials = (
        None
        if without == "tls"
        else grpc.ssl_channel_credentials(root_certificates=tls_service.ca.read_bytes())
    )
    channel = open_channel(
        f"ipv4:{tls_service.address}",
        intake_pb2.DESCRIPTOR,
        tokens=tls_service.tokens,
        credentials=credentials,
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await intake_pb2_grpc.IntakeServiceStub(channel).GetIncident(
                intake_pb2.GetIncidentRequest(incident_id="i-1", all_clients=True), timeout=5
            )
    finally:
        await channel.close()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


INTAKE_SERVICE = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name


def health_of(channel: grpc.Channel, service: str) -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
    status: int = reply.status
    return status


def wait_until_intake_serves(
    channel: grpc.Channel, process: subprocess.Popen[str], log: Path
) -> None:
    """Until the replica's health port tells its service SERVING (set once the main server
    started: before, the port may not answer, or not know the service yet)."""
    deadline = time.monotonic() + 60  # against a hang, not a measure: starting takes seconds
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if health_of(channel, INTAKE_SERVICE) == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the replica's health port never told SERVING; see {log}")


@on_backend("sqlite", "platform")
def test_with_mtls_the_probes_ask_a_plaintext_port_that_serves_health_alone(
    platform: Platform, tmp_path: Path
) -> None:
    """The chart's design with grpc.tls on: the kubelet's grpc probes (no TLS) ask the health
    port, which tells the service's own status; the main port takes mTLS only."""
    issue_certificates(tmp_path)
    main_port, health_port = free_ports(2)
    label = "intake-mtls"
    process = platform.start_service(
        "intake",
        label=label,
        env={
            "FIREBREAK_INTAKE_ADDR": f"127.0.0.1:{main_port}",
            "FIREBREAK_GRPC_HEALTH_PORT": str(health_port),
            "FIREBREAK_GRPC_TLS_CA": str(tmp_path / "ca.crt"),
            "FIREBREAK_GRPC_TLS_CERT": str(tmp_path / "intake.crt"),
            "FIREBREAK_GRPC_TLS_KEY": str(tmp_path / "intake.key"),
        },
    )
    token = (METADATA_KEY, f"Bearer {platform.scope_token()}")
    listing = intake_pb2.ListIncidentsRequest(all_clients=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as probe:
            wait_until_intake_serves(probe, process, platform.var_dir / "logs" / f"{label}.log")
            # What the startup and readiness probes ask (""), and the liveness probe.
            for service in ("", LIVENESS_SERVICE):
                assert health_of(probe, service) == health_pb2.HealthCheckResponse.SERVING
            # Health alone: even a call with a valid token finds no service here.
            assert refused(
                lambda: intake_pb2_grpc.IntakeServiceStub(probe).ListIncidents(
                    listing, metadata=(token,), timeout=5
                )
            ) == (grpc.StatusCode.UNIMPLEMENTED)
        with grpc.insecure_channel(f"127.0.0.1:{main_port}") as plaintext:
            assert refused(lambda: health_of(plaintext, "")) == grpc.StatusCode.UNAVAILABLE
            assert refused(
                lambda: intake_pb2_grpc.IntakeServiceStub(plaintext).ListIncidents(
                    listing, metadata=(token,), timeout=5
                )
            ) == (grpc.StatusCode.UNAVAILABLE)
        credentials = channel_credentials(tls_settings(tmp_path, "gateway"))
        assert credentials is not None
        with grpc.secure_channel(f"127.0.0.1:{main_port}", credentials) as gateway:
            # The gateway's certificate and token: answered.
            intake_pb2_grpc.IntakeServiceStub(gateway).ListIncidents(
                listing, metadata=(token,), timeout=10
            )
    finally:
        exit_code = platform.stop_process(label)
    assert exit_code == 0
