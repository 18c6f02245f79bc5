"""Builds the gateway's FastAPI application: storage, backends, errors, tracing, routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from firebreak.database import create_engine
from firebreak.metrics_sampler import MetricsSampler
from firebreak.settings import Settings
from firebreak.startup_migration import ensure_migrated
from services.gateway import client_trace, keys, tenants
from services.gateway.backends import Backends
from services.gateway.problems import BodySizeLimit, install_problem_handlers
from services.gateway.rate_limits import RateLimiter
from services.gateway.request_metrics import RequestMetrics
from services.gateway.routers import (
    ack_links,
    actions,
    analysis,
    api_keys,
    audit,
    clients,
    closure,
    contact_methods,
    custody_signatures,
    dead_letters,
    deadline_rules,
    deadlines,
    escalation_policies,
    evidence,
    evidence_content,
    evidence_export,
    health,
    incidents,
    lifecycle,
    notes,
    notifications,
    people,
    reports,
    review_documents,
    schedules,
    tasks,
    time_entries,
    updates,
)

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url("gateway"))
        await ensure_migrated(engine, "gateway")
        async with engine.begin() as connection:
            if settings.admin_key is not None:
                await tenants.install_bootstrap_key(connection, key=settings.admin_key)
            elif not await tenants.has_bootstrap_key(connection):
                # Only the first start generates one: a restart or a second replica must not
                # silently replace the key an operator was shown.
                admin_key = keys.generate_key()
                await tenants.install_bootstrap_key(connection, key=admin_key)
                log.warning("FIREBREAK_ADMIN_KEY is not set; generated admin key: %s", admin_key)
        backends = app.state.backends = Backends.open(settings, engine)
        sampler = MetricsSampler(
            service="gateway", engine=engine, nats=lambda: backends.nats, consumes=False
        )
        stop_sampling = asyncio.Event()
        sampling = asyncio.create_task(
            sampler.run(stop_sampling, settings.metrics_sample_seconds), name="metrics"
        )
        yield
        stop_sampling.set()
        await sampling
        await backends.close()

    app = FastAPI(
        title="Firebreak",
        summary="Incident response for professional-services firms",
        version="1.0.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    for module in (
        incidents,
        lifecycle,
        tasks,
        notifications,
        updates,
        notes,
        analysis,
        actions,
        time_entries,
        review_documents,
        closure,
        reports,
        clients,
        people,
        contact_methods,
        schedules,
        escalation_policies,
        deadlines,
        evidence_content,
        evidence,
        evidence_export,
        custody_signatures,
        deadline_rules,
        dead_letters,
        api_keys,
        audit,
        ack_links,
        health,
    ):
        app.include_router(module.router)
    # The key acknowledge links are checked with (routers/ack_links.py); None: none is valid.
    app.state.link_secret = settings.link_secret
    app.state.evidence_max_bytes = settings.evidence_max_bytes  # routers/evidence_content.py
    app.state.commander_may_close = settings.commander_may_close  # routers/closure.py
    app.state.rate_limiter = RateLimiter.from_settings(settings)  # dependencies.py
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        streamed=evidence_content.STREAMED_UPLOAD,
    )
    # Outside the body limit, so that a refused body is counted too.
    app.add_middleware(RequestMetrics)
    # One server span per request; the ASGI send/receive spans under it tell nothing more. An
    # acknowledge link's URL is a credential, so its requests make no span that would record it
    # (the acknowledgement itself still joins the incident's trace). The span links the
    # client's trace rather than joining it, and its URL has no query (client_trace, whose
    # middleware main.py adds).
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="healthz,readyz,status,v1/ack/",
        exclude_spans=["receive", "send"],
        server_request_hook=client_trace.request_span_hook,
    )
    return app
