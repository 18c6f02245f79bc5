"""The gateway's entry point: the app under uvicorn, which handles SIGTERM gracefully."""

from __future__ import annotations

import uvicorn

from firebreak.metrics import serve_metrics
from firebreak.settings import Settings
from services.gateway.app import create_app
from services.gateway.client_trace import DropClientTraceContext


async def serve(settings: Settings) -> None:
    config = uvicorn.Config(
        # Outside the app's tracing middleware: a client's trace headers never reach it.
        DropClientTraceContext(create_app(settings)),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        access_log=False,
        http="httptools",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        # Beyond it uvicorn answers 503 at once instead of queueing requests in memory.
        limit_concurrency=settings.gateway_limit_concurrency,
    )
    stop_serving_metrics = serve_metrics(settings)
    try:
        await uvicorn.Server(config).serve()
    finally:
        stop_serving_metrics()
