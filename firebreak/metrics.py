"""Prometheus metrics of every process, in prometheus_client's default registry, and the
/metrics endpoint that serves them on a port of its own (FIREBREAK_METRICS_PORT).

Requests are counted where they happen (firebreak/grpc_metrics.py, the gateway's
request_metrics.py); the state of the outbox, the consumers and NATS is sampled periodically
(firebreak/metrics_sampler.py), so that no request pays for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from firebreak.settings import Settings

log = logging.getLogger(__name__)

GRPC_HANDLED = Counter(
    "firebreak_grpc_server_handled",
    "gRPC calls a server finished, by service, method and status code",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_HANDLING_SECONDS = Histogram(
    "firebreak_grpc_server_handling_seconds",
    "How long a server took over a gRPC call, to its last message",
    ["grpc_service", "grpc_method"],
)
HTTP_REQUESTS = Counter(
    "firebreak_http_requests",
    "HTTP requests the gateway answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "firebreak_http_request_duration_seconds",
    "How long the gateway took over a request, by method and route template",
    ["method", "route"],
)
OUTBOX_PENDING = Gauge(
    "firebreak_outbox_pending", "Events in the outbox not yet published", ["service"]
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "firebreak_outbox_oldest_pending_age_seconds",
    "Age of the oldest event in the outbox not yet published (0: none)",
    ["service"],
)
NATS_CONNECTED = Gauge(
    "firebreak_nats_connected", "1 while the process is connected to NATS, else 0", ["service"]
)
# The consumers' state as JetStream reports it; every process reports every durable consumer
# of the stream (the same numbers: aggregate with max by durable), so that one whose service is
# down is still watched.
CONSUMER_PENDING = Gauge(
    "firebreak_consumer_pending", "Events waiting for a durable consumer", ["durable"]
)
CONSUMER_ACK_PENDING = Gauge(
    "firebreak_consumer_ack_pending",
    "Events delivered to a durable consumer and not yet acknowledged",
    ["durable"],
)
CONSUMER_REDELIVERED = Gauge(
    "firebreak_consumer_redelivered",
    "Events delivered to a durable consumer more than once and not yet acknowledged",
    ["durable"],
)
CONSUMER_EVENTS_EXPIRED_UNREAD = Counter(
    "firebreak_consumer_events_expired_unread",
    "Events the stream dropped (max age) before a durable consumer read them",
    ["durable"],
)
DEAD_LETTERS_PARKED = Gauge(
    "firebreak_dead_letters_parked", "Events parked as dead letters, awaiting an admin", ["service"]
)
ESCALATION_TIMERS_PENDING = Gauge(
    "firebreak_escalation_timers_pending",
    "Escalations running with a next step to come (notify)",
)


def serve_metrics(settings: Settings) -> Callable[[], None]:
    """Serves /metrics on FIREBREAK_METRICS_PORT from a thread of its own (answering even when
    the event loop is busy); returns what stops it. Port 0: serves nothing."""
    if settings.metrics_port == 0:
        return lambda: None
    server, thread = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    log.info("serving metrics on %s:%d", settings.metrics_host, settings.metrics_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop
