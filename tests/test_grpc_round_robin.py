"""The gateway's channels in a cluster (firebreak/grpc_channels.py): calls spread over every
replica behind a name, reads retried on another replica when one is unavailable, writes never.

Two real gRPC servers (firebreak's own create_server) serve IntakeService on two loopback
addresses; the channel reaches them as one target with two addresses, as a headless Service's
DNS name resolves to one address per pod. Their servicer stands in for intake's logic: the
transport, load balancing and retries under test are the real ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from firebreak.api.intake.v1 import intake_pb2, intake_pb2_grpc
from firebreak.grpc_channels import open_channel, target
from firebreak.grpc_server import create_server
from firebreak.launcher import free_ports

CALLS = 40


class Replica(intake_pb2_grpc.IntakeServiceServicer):
    """Answers with its own name; a draining one answers UNAVAILABLE, as a replica that is
    shutting down does."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.draining = False

    async def _answer(self, context: grpc.aio.ServicerContext) -> intake_pb2.Incident:
        self.calls += 1
        if self.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} is shutting down")
        return intake_pb2.Incident(id=self.name)

    async def GetIncident(
        self, request: intake_pb2.GetIncidentRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Incident:
        return await self._answer(context)

    async def ReportIncident(
        self, request: intake_pb2.ReportIncidentRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Incident:
        return await self._answer(context)


@dataclass
class Cluster:
    replicas: list[Replica]
    servers: list[grpc.aio.Server]
    stub: intake_pb2_grpc.IntakeServiceStub


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    replicas = [Replica("a"), Replica("b")]
    ports = free_ports(len(replicas))
    servers = []
    for replica, port in zip(replicas, ports, strict=True):
        server, _ = create_server()
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(replica, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        servers.append(server)
    addresses = ",".join(f"127.0.0.1:{port}" for port in ports)
    channel = open_channel(f"ipv4:{addresses}", intake_pb2.DESCRIPTOR)
    await channel.channel_ready()
    yield Cluster(replicas, servers, intake_pb2_grpc.IntakeServiceStub(channel))
    await channel.close()
    for server in servers:
        await server.stop(None)


async def test_calls_are_spread_over_every_replica(cluster: Cluster) -> None:
    async def answered_by() -> str:
        return (await cluster.stub.GetIncident(intake_pb2.GetIncidentRequest(), timeout=5)).id

    # The channel is ready once one replica's connection is: calls go to it alone until the
    # other's is ready too. Once both have answered, round_robin alternates.
    seen = {await answered_by() for _ in range(CALLS)}
    assert seen == {"a", "b"}  # pick_first would give one name, however long
    for replica in cluster.replicas:
        replica.calls = 0
    answers = [await answered_by() for _ in range(CALLS)]
    assert answers.count("a") == answers.count("b") == CALLS // 2, answers
    assert [replica.calls for replica in cluster.replicas] == [CALLS // 2, CALLS // 2]


async def test_a_read_a_replica_cannot_serve_is_retried_on_another(cluster: Cluster) -> None:
    draining, healthy = cluster.replicas
    draining.draining = True
    for _ in range(CALLS):
        reply = await cluster.stub.GetIncident(intake_pb2.GetIncidentRequest(), timeout=5)
        assert reply.id == healthy.name
    assert draining.calls > 0  # it was asked, refused, and the read went on to the other


async def test_a_write_is_never_retried(cluster: Cluster) -> None:
    draining, _ = cluster.replicas
    draining.draining = True
    refused = 0
    for _ in range(CALLS):
        try:
            await cluster.stub.ReportIncident(intake_pb2.ReportIncidentRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            refused += 1
    # each write the draining replica refused reached the caller, not a second replica
    assert refused == draining.calls > 0


async def test_reads_carry_on_when_a_replica_stops(cluster: Cluster) -> None:
    await cluster.servers[0].stop(None)
    for _ in range(CALLS):
        reply = await cluster.stub.GetIncident(intake_pb2.GetIncidentRequest(), timeout=5)
        assert reply.id == "b"


def test_a_plain_address_is_resolved_by_dns() -> None:
    assert target("fb-firebreak-intake-headless:50051") == (
        "dns:///fb-firebreak-intake-headless:50051"
    )
    assert target("ipv4:127.0.0.1:1,127.0.0.2:1") == "ipv4:127.0.0.1:1,127.0.0.2:1"
