"""What the gateway talks to: its database, the services' gRPC stubs, and NATS (its relay, and
its consumer of the attachments it moves from intake to evidence)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak import bus, runtime
from firebreak.api.admin.v1 import dead_letters_pb2
from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.api.evidence.v1.evidence_pb2_grpc import EvidenceServiceStub
from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.intake.v1.intake_pb2_grpc import IntakeServiceStub
from firebreak.api.notify.v1 import deadlines_pb2, notify_pb2, updates_pb2
from firebreak.api.notify.v1.deadlines_pb2_grpc import DeadlineServiceStub
from firebreak.api.notify.v1.notify_pb2_grpc import (
    ContactMethodServiceStub,
    EscalationPolicyServiceStub,
    NotifyServiceStub,
    ScheduleServiceStub,
)
from firebreak.api.notify.v1.updates_pb2_grpc import StatusUpdateServiceStub
from firebreak.api.review.v1 import review_pb2
from firebreak.api.review.v1.review_pb2_grpc import ReviewServiceStub
from firebreak.api.triage.v1 import triage_pb2
from firebreak.api.triage.v1.triage_pb2_grpc import TriageServiceStub
from firebreak.consumer import DeliveryPolicy, EventConsumer, RemoteStep
from firebreak.database import answers
from firebreak.dead_letters import DeadLetters
from firebreak.dead_letters.server import DeadLetterServicer
from firebreak.events import ATTACHMENT_RECEIVED
from firebreak.grpc_channels import open_channel
from firebreak.grpc_tls import channel_credentials
from firebreak.outbox import Outbox
from firebreak.scope_token import ScopeTokens, private_key
from firebreak.settings import Settings, SettingsError
from services.gateway import models
from services.gateway.alert_batches import AlertBatches
from services.gateway.mail_evidence import BATCH_SIZE, AttachmentMover

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 1.0
CONSUMER_RESTART_SECONDS = 1.0
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
    alert_batches: AlertBatches = field(init=False)  # single alert events, sent on together
    consumer: EventConsumer | None = None  # attachment.received (mail_evidence.py)
    dead_letters: DeadLetterServicer | None = None  # what the consumer gave up on
    nats: NATS | None = None
    nats_link: bus.LinkState = field(default_factory=bus.LinkState)
    _nats_connecting: asyncio.Task[None] | None = None
    _relay: asyncio.Task[None] | None = None
    _housekeeping: asyncio.Task[None] | None = None
    _consuming: asyncio.Task[None] | None = None
    _stop_relaying: asyncio.Event = field(default_factory=asyncio.Event)
    _stop_consuming: asyncio.Event = field(default_factory=asyncio.Event)

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
        self.alert_batches = AlertBatches(self.intake)

    @classmethod
    def open(cls, settings: Settings, engine: AsyncEngine) -> Backends:
        dead_letters = dead_letters_pb2.DESCRIPTOR
        if settings.scope_token_key is None:
            raise SettingsError(
                "FIREBREAK_SCOPE_TOKEN_KEY is required: the services answer only calls whose "
                "scope token the gateway signed with it"
            )
        tokens = ScopeTokens(private_key(settings.scope_token_key))
        credentials = channel_credentials(settings)
        backends = cls(
            engine=engine,
            # Every service also serves the admin's dead letters.
            intake_channel=open_channel(
                settings.intake_addr,
                intake_pb2.DESCRIPTOR,
                dead_letters,
                tokens=tokens,
                credentials=credentials,
            ),
            review_channel=open_channel(
                settings.review_addr,
                review_pb2.DESCRIPTOR,
                dead_letters,
                tokens=tokens,
                credentials=credentials,
            ),
            triage_channel=open_channel(
                settings.triage_addr,
                triage_pb2.DESCRIPTOR,
                dead_letters,
                tokens=tokens,
                credentials=credentials,
            ),
            notify_channel=open_channel(
                settings.notify_addr,
                notify_pb2.DESCRIPTOR,
                deadlines_pb2.DESCRIPTOR,
                updates_pb2.DESCRIPTOR,
                dead_letters,
                tokens=tokens,
                credentials=credentials,
            ),
            evidence_channel=open_channel(
                settings.evidence_addr,
                evidence_pb2.DESCRIPTOR,
                dead_letters,
                options=EVIDENCE_CHANNEL_OPTIONS,
                tokens=tokens,
                credentials=credentials,
            ),
        )
        backends._consume_attachments(settings)
        # Published rows and old inbox entries are deleted, as in every service.
        backends._housekeeping = asyncio.create_task(
            runtime.keep_house(backends.outbox, backends.consumer, backends._stop_relaying),
            name="housekeeping",
        )
        # The gateway serves, and is ready, while NATS is away: events wait in its outbox.
        backends._nats_connecting = asyncio.create_task(backends._connect_nats(settings))
        return backends

    def _consume_attachments(self, settings: Settings) -> None:
        """The consumer of attachment.received, and the dead letters it parks: the gateway
        alone may call evidence, so it moves each attachment there (mail_evidence.py)."""
        remote: dict[str, RemoteStep] = {
            ATTACHMENT_RECEIVED: AttachmentMover(self.intake, self.evidence)
        }
        dead_letters = DeadLetters(service="gateway", engine=self.engine, table=models.dead_letters)
        self.consumer = EventConsumer(
            durable=settings.durable_prefix + "gateway",
            handlers={},
            outbox=self.outbox,
            inbox=models.inbox,
            batch_size=BATCH_SIZE,
            stream=bus.stream_config(settings.stream_replicas, settings.stream_max_bytes),
            dead_letters=dead_letters,
            delivery=DeliveryPolicy.from_settings(settings),
            remote=remote,
        )
        self.dead_letters = DeadLetterServicer(
            dead_letters, outbox=self.outbox, inbox=models.inbox, handlers={}, remote=remote
        )

    async def _connect_nats(self, settings: Settings) -> None:
        stream = bus.stream_config(settings.stream_replicas, settings.stream_max_bytes)
        self.nats = await runtime.connect_bus(settings, "gateway", stream, self.nats_link)
        # The relay publishes the events about people that the gateway's outbox holds.
        self._relay = asyncio.create_task(
            self.outbox.run_relay(self.nats, self._stop_relaying, stream), name="outbox relay"
        )
        self._consuming = asyncio.create_task(self._consume(self.nats), name="consumer")

    async def _consume(self, client: NATS) -> None:
        """Runs the consumer until the gateway stops; started again should it fail (NATS
        refusing its consumer at first, say), since the gateway serves on whatever happens."""
        assert self.consumer is not None
        while not self._stop_consuming.is_set():
            try:
                await self.consumer.run(client, self._stop_consuming)
            except Exception:
                log.exception("the gateway's consumer stopped; starting it again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_consuming.wait(), CONSUMER_RESTART_SECONDS)

    def nats_connected(self) -> bool:
        return self.nats is not None and self.nats.is_connected

    async def database_answers(self) -> bool:
        return await answers(self.engine, HEALTH_TIMEOUT_SECONDS)

    async def services_health(self) -> dict[str, str]:
        """Each service's grpc.health.v1 status (as seen through this gateway's channel):
        SERVING, NOT_SERVING, or UNREACHABLE."""
        channels = {
            "intake": self.intake_channel,
            "triage": self.triage_channel,
            "notify": self.notify_channel,
            "evidence": self.evidence_channel,
            "review": self.review_channel,
        }
        states = await asyncio.gather(*map(_health, channels.values()))
        return dict(zip(channels, states, strict=True))

    async def close(self) -> None:
        if self._nats_connecting is not None:
            self._nats_connecting.cancel()
        # The transfers in hand are finished first; their messages are then acknowledged.
        self._stop_consuming.set()
        if self._consuming is not None:
            await asyncio.gather(self._consuming, return_exceptions=True)
        # Ends housekeeping too, so it is set even if NATS never answered and no relay runs:
        # a gateway stopped during an outage would otherwise wait for ever.
        self._stop_relaying.set()
        if self._relay is not None:
            # Its last pass publishes what requests in flight added.
            await asyncio.gather(self._relay, return_exceptions=True)
        if self._housekeeping is not None:
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        if self.nats is not None:
            await runtime.close_bus(self.nats)
        await self.intake_channel.close()
        await self.review_channel.close()
        await self.triage_channel.close()
        await self.notify_channel.close()
        await self.evidence_channel.close()
        await self.engine.dispose()


async def _health(channel: grpc.aio.Channel) -> str:
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError:
        return "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
