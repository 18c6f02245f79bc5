"""What the gateway talks to: its database, the services' gRPC stubs, and NATS."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client as NATS
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak import bus, runtime
from firebreak.api.evidence.v1.evidence_pb2_grpc import EvidenceServiceStub
from firebreak.api.intake.v1.intake_pb2_grpc import IntakeServiceStub
from firebreak.api.notify.v1.deadlines_pb2_grpc import DeadlineServiceStub
from firebreak.api.notify.v1.notify_pb2_grpc import (
    ContactMethodServiceStub,
    EscalationPolicyServiceStub,
    NotifyServiceStub,
    ScheduleServiceStub,
)
from firebreak.api.notify.v1.updates_pb2_grpc import StatusUpdateServiceStub
from firebreak.api.review.v1.review_pb2_grpc import ReviewServiceStub
from firebreak.api.triage.v1.triage_pb2_grpc import TriageServiceStub
from firebreak.outbox import Outbox
from firebreak.settings import Settings
from services.gateway import models

HEALTH_TIMEOUT_SECONDS = 1.0
RPC_TIMEOUT_SECONDS = 5.0  # every call the gateway makes to a service
# Calls that read a whole evidence item back (verify, receipt): up to 2 GiB to decrypt and hash.
CONTENT_RPC_TIMEOUT_SECONDS = 600.0
# Evidence streams whole items: a fixed HTTP/2 window (no BDP probing, which grows it to many
# MiB) keeps what gRPC buffers ahead of a slow reader or writer small.
EVIDENCE_CHANNEL_OPTIONS = (("grpc.http2.bdp_probe", 0),)


@dataclass
class Backends:
    engine: AsyncEngine
    intake_channel: grpc.aio.Channel
    review_channel: grpc.aio.Channel
    triage_channel: grpc.aio.Channel
    notify_channel: grpc.aio.Channel
    evidence_channel: grpc.aio.Channel
    intake: IntakeServiceStub = field(init=False)
    review: ReviewServiceStub = field(init=False)
    triage: TriageServiceStub = field(init=False)
    notify: NotifyServiceStub = field(init=False)
    schedules: ScheduleServiceStub = field(init=False)
    policies: EscalationPolicyServiceStub = field(init=False)
    contact_methods: ContactMethodServiceStub = field(init=False)
    deadlines: DeadlineServiceStub = field(init=False)
    updates: StatusUpdateServiceStub = field(init=False)
    evidence: EvidenceServiceStub = field(init=False)
    outbox: Outbox = field(init=False)
    nats: NATS | None = None
    _nats_connecting: asyncio.Task[None] | None = None
    _relay: asyncio.Task[None] | None = None
    _housekeeping: asyncio.Task[None] | None = None
    _stop_relaying: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.intake = IntakeServiceStub(self.intake_channel)
        self.review = ReviewServiceStub(self.review_channel)
        self.triage = TriageServiceStub(self.triage_channel)
        self.notify = NotifyServiceStub(self.notify_channel)
        self.schedules = ScheduleServiceStub(self.notify_channel)
        self.policies = EscalationPolicyServiceStub(self.notify_channel)
        self.contact_methods = ContactMethodServiceStub(self.notify_channel)
        self.deadlines = DeadlineServiceStub(self.notify_channel)
        self.updates = StatusUpdateServiceStub(self.notify_channel)
        self.evidence = EvidenceServiceStub(self.evidence_channel)
        self.outbox = Outbox(self.engine, models.outbox)

    @classmethod
    def open(cls, settings: Settings, engine: AsyncEngine) -> Backends:
        backends = cls(
            engine=engine,
            intake_channel=grpc.aio.insecure_channel(
                settings.intake_addr, interceptors=aio_client_interceptors()
            ),
            review_channel=grpc.aio.insecure_channel(
                settings.review_addr, interceptors=aio_client_interceptors()
            ),
            triage_channel=grpc.aio.insecure_channel(
                settings.triage_addr, interceptors=aio_client_interceptors()
            ),
            notify_channel=grpc.aio.insecure_channel(
                settings.notify_addr, interceptors=aio_client_interceptors()
            ),
            evidence_channel=grpc.aio.insecure_channel(
                settings.evidence_addr,
                interceptors=aio_client_interceptors(),
                options=EVIDENCE_CHANNEL_OPTIONS,
            ),
        )
        # The gateway serves (and reports not-ready) while NATS is still coming up.
        backends._nats_connecting = asyncio.create_task(backends._connect_nats(settings))
        return backends

    async def _connect_nats(self, settings: Settings) -> None:
        self.nats = await bus.connect(settings.bus_url, name=f"gateway-{settings.instance_id}")
        # The relay publishes the events about people that the gateway's outbox holds.
        stream = bus.stream_config(settings.stream_replicas)
        self._relay = asyncio.create_task(
            self.outbox.run_relay(self.nats, self._stop_relaying, stream), name="outbox relay"
        )
        # Published rows are deleted after a day, as in every service.
        self._housekeeping = asyncio.create_task(
            runtime.keep_house(self.outbox, None, self._stop_relaying), name="housekeeping"
        )

    def nats_connected(self) -> bool:
        return self.nats is not None and self.nats.is_connected

    async def intake_serving(self) -> bool:
        stub = health_pb2_grpc.HealthStub(self.intake_channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def close(self) -> None:
        if self._nats_connecting is not None:
            self._nats_connecting.cancel()
        if self._relay is not None:
            self._stop_relaying.set()  # a last pass publishes what requests in flight added
            await asyncio.gather(self._relay, return_exceptions=True)
        if self._housekeeping is not None:
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        if self.nats is not None and self.nats.is_connected:
            await self.nats.drain()
        await self.intake_channel.close()
        await self.review_channel.close()
        await self.triage_channel.close()
        await self.notify_channel.close()
        await self.evidence_channel.close()
        await self.engine.dispose()
