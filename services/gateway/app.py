"""Builds the gateway's FastAPI application: storage, backends, errors, tracing, routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from firebreak.database import create_engine
from firebreak.metrics_sampler import MetricsSampler
from firebreak.settings import Settings, SettingsError
from firebreak.startup_migration import ensure_migrated
from services.gateway import client_trace, tenants
from services.gateway.backends import Backends
from services.gateway.console import routes as console_routes
from services.gateway.principal_cache import PrincipalCache
from services.gateway.problems import BodySizeLimit, install_problem_handlers
from services.gateway.rate_limits import RateLimiter
from services.gateway.request_metrics import RequestMetrics
from services.gateway.routers import (
    ack_links,
    actions,
    alerts,
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
    heartbeats,
    incidents,
    integrations,
    lifecycle,
    notes,
    notifications,
    people,
    report_attachments,
    reports,
    review_documents,
    schedules,
    tasks,
    time_entries,
    updates,
)


def create_app(settings: Settings) -> FastAPI:
    # No key is generated here: one would have to be shown to someone, and logs are no place
    # for it. `make run` keeps one in the var dir and passes it (firebreak/local.py).
    admin_key = settings.admin_key
    if admin_key is None:
        raise SettingsError(
            "FIREBREAK_ADMIN_KEY is not set: the gateway needs the bootstrap admin key "
            "(at least 24 characters, e.g. `openssl rand -base64 36`)"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url("gateway"))
        await ensure_migrated(engine, "gateway")
        async with engine.begin() as connection:
            await tenants.install_bootstrap_key(connection, key=admin_key)
        backends = app.state.backends = Backends.open(settings, engine)
        sampler = MetricsSampler(
            service="gateway", engine=engine, nats=lambda: backends.nats, consumes=True
        )
        stop_sampling = asyncio.Event()
        sampling = asyncio.create_task(
            sampler.run(stop_sampling, settings.metrics_sample_seconds), name="metrics"
        )
        following = asyncio.create_task(
            app.state.live_feed.follow(lambda: backends.nats, stop_sampling), name="live feed"
        )
        dropping = asyncio.create_task(
            app.state.principal_cache.follow(lambda: backends.nats, stop_sampling),
            name="principal changes",
        )
        yield
        stop_sampling.set()
        await asyncio.gather(sampling, following, dropping)
        await backends.close()

    app = FastAPI(
        title="Firebreak",
        summary="Incident response for professional-services firms",
        version="1.0.0",
        lifespan=lifespan,
        # FIREBREAK_API_DOCS=false: a deployment need not describe its API to whoever reaches it.
        openapi_url="/openapi.json" if settings.api_docs else None,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    install_problem_handlers(app)
    for module in (
        # First: a request is matched against the routes in order (by the router, and again by
        # the tracing middleware, for the span's name), and an alert storm is its busiest path.
        alerts,
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
        integrations,
        heartbeats,
        report_attachments,
        api_keys,
        audit,
        ack_links,
        health,
    ):
        app.include_router(module.router)
    console_routes.install(app, settings)
    # The key acknowledge links are checked with (routers/ack_links.py); None: none is valid.
    app.state.link_secret = settings.link_secret
    app.state.evidence_max_bytes = settings.evidence_max_bytes  # routers/evidence_content.py
    app.state.list_page_max_bytes = settings.list_page_max_bytes  # dependencies.PageMaxBytes
    app.state.commander_may_close = settings.commander_may_close  # routers/closure.py
    app.state.rate_limiter = RateLimiter.from_settings(settings)  # dependencies.py
    app.state.principal_cache = PrincipalCache(settings.principal_cache_seconds)  # ditto
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        streamed=evidence_content.STREAMED_UPLOAD,
        own_limits={alerts.ALERTMANAGER_PATH: settings.alertmanager_max_body_bytes},
    )
    # Outside the body limit, so that a refused body is counted too.
    app.add_middleware(RequestMetrics)
    # One server span per request; the ASGI send/receive spans under it tell nothing more. An
    # acknowledge link's URL is a credential, so its requests make no span that would record it
    # (nor does a heartbeat's, whose key is in its path, nor a console sign-in link's; the
    # console's static files and its never-ending event stream say nothing worth a span)
    # (the acknowledgement itself still joins the incident's trace). A single alert event makes
    # none either: a storm's events go to intake in batches, each batch's call a trace of its
    # own (alert_batches.py), and a span per event was a third of the gateway's CPU per event.
    # The span links the client's trace rather than joining it, and its URL has no query
    # (client_trace, whose middleware main.py adds).
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=(
            "healthz,readyz,status,v1/ack/,v1/heartbeats/,v2/enqueue,console/welcome/,"
            "console/static/,console/live"
        ),
        exclude_spans=["receive", "send"],
        server_request_hook=client_trace.request_span_hook,
    )
    return app
