"""OpenTelemetry set-up for every process: one tracer provider, one exporter, trace-aware logs.

Spans go to OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OTEL_* variables configure
it), nowhere when OTEL_TRACES_EXPORTER=none, and otherwise to a JSON-lines file per service under
var/traces/, which is what tests read.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from firebreak.database import error_summary, is_database_error, sqlstate

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class JsonLinesSpanExporter(SpanExporter):
    """Appends one compact JSON object per finished span to a file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(
            json.dumps(_span_record(span), separators=(",", ":")) + "\n" for span in spans
        )
        with self._lock:
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def _span_record(span: ReadableSpan) -> dict[str, object]:
    context = span.get_span_context()
    assert context is not None  # a finished SDK span always has one
    return {
        "service": span.resource.attributes.get(SERVICE_NAME),
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
            }
            for link in span.links
        ],
    }


def setup_telemetry(service: str, traces_dir: Path, log_level: str = "INFO") -> TracerProvider:
    """Installs the global tracer provider and trace-aware logging for this process."""
    service_name = os.environ.get("OTEL_SERVICE_NAME", f"firebreak-{service}")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if os.environ.get("OTEL_TRACES_EXPORTER") == "none":
        # Spans are still made, so trace context still flows to the services that export.
        exporter: SpanExporter | None = None
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        # One file per process: replicas appending to one file could interleave lines.
        exporter = JsonLinesSpanExporter(traces_dir / f"{service}-{os.getpid()}.jsonl")
    if exporter is not None:
        # BatchSpanProcessor honours OTEL_BSP_SCHEDULE_DELAY and friends.
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _setup_logging(service, log_level)
    return provider


class _TraceContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else "-"
        record.span_id = format(context.span_id, "016x") if context.is_valid else "-"
        return True


class _DatabaseErrorArgumentsFilter(logging.Filter):
    """A database error logged as an argument ("failed: %s") shows its type and code only:
    its text may quote the values refused."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_loggable(argument) for argument in record.args)
        return True


def _loggable(argument: object) -> object:
    if isinstance(argument, BaseException) and is_database_error(argument):
        return error_summary(argument)
    return argument


class DatabaseErrorRedactingFormatter(logging.Formatter):
    """Tracebacks keep their frames, but a database error in them (or in their causes) is
    named by type and code, not by its text."""

    def formatException(self, ei: _ExcInfo) -> str:
        text = super().formatException(ei)
        for error in _chain(ei[1]):
            if is_database_error(error):
                # Its line as the traceback prints it ("module.Type: message"), which may quote
                # what was written, becomes the type and code alone.
                line = "".join(traceback.format_exception_only(type(error), error))
                named = line.partition(": ")[0].rstrip("\n")
                text = text.replace(line.rstrip("\n"), f"{named}: {error_summary(error)}")
        return text


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and every cause and context behind it, each once."""
    found: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__]
    return found


def _setup_logging(service: str, log_level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceContextFilter())
    handler.addFilter(_DatabaseErrorArgumentsFilter())
    handler.setFormatter(
        DatabaseErrorRedactingFormatter(
            f"%(asctime)s %(levelname)s {service} %(name)s trace=%(trace_id)s span=%(span_id)s "
            "%(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def record_error(span: trace.Span, error: BaseException) -> None:
    """Marks the span failed by `error`. A database error goes on it by type and code only
    (`error.type`, `db.response.status_code`): its text may quote the values refused."""
    span.set_attribute("error.type", type(error).__qualname__)
    if not is_database_error(error):
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, repr(error)))
        return
    if code := sqlstate(error):
        span.set_attribute("db.response.status_code", code)
    span.set_status(Status(StatusCode.ERROR, error_summary(error)))


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def current_span_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else ""


@contextmanager
def span_in_trace(name: str, *, trace_id: str, parent_span_id: str) -> Iterator[trace.Span]:
    """A span that joins an earlier trace (an incident's), linked to the current one (the
    request that started it), so everything a command causes is found in the incident's trace.
    Without a trace to join, it is an ordinary child of the current span."""
    tracer = trace.get_tracer(__name__)
    request = trace.get_current_span().get_span_context()
    if not (trace_id and parent_span_id):
        with tracer.start_as_current_span(name) as span:
            yield span
        return
    incident = trace.SpanContext(
        int(trace_id, 16),
        int(parent_span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    with tracer.start_as_current_span(
        name,
        context=trace.set_span_in_context(trace.NonRecordingSpan(incident)),
        links=[trace.Link(request)] if request.is_valid else [],
    ) as span:
        yield span


def current_trace_context() -> dict[str, str]:
    """The current trace context as W3C headers, to keep with work that runs later (a timer)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextmanager
def span_in_context(name: str, context: Mapping[str, str]) -> Iterator[trace.Span]:
    """A span that continues the trace whose context was kept with delayed work."""
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(name, context=propagate.extract(dict(context))) as span:
        yield span
