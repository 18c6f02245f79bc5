"""With OTEL_EXPORTER_OTLP_ENDPOINT set, spans leave over OTLP/gRPC instead of the local file."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from firebreak.launcher import free_port

EMIT_ONE_SPAN = """
from pathlib import Path
from opentelemetry import trace
from firebreak.telemetry import setup_telemetry
provider = setup_telemetry("probe", Path({traces_dir!r}))
with trace.get_tracer("probe").start_as_current_span("report incident"):
    pass
provider.shutdown()
"""


class RecordingCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """A real OTLP/gRPC endpoint standing in for the collector an operator would run."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(tmp_path: Path) -> None:
    collector = RecordingCollector()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        env = dict(
            os.environ,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
            OTEL_EXPORTER_OTLP_INSECURE="true",
        )
        subprocess.run(
            [sys.executable, "-c", EMIT_ONE_SPAN.format(traces_dir=str(tmp_path))],
            env=env,
            check=True,
            timeout=60,
        )
    finally:
        server.stop(None)

    spans = [
        (resource.resource, span)
        for request in collector.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [span.name for _, span in spans] == ["report incident"]
    service_names = {
        attribute.value.string_value
        for resource, _ in spans
        for attribute in resource.attributes
        if attribute.key == "service.name"
    }
    assert service_names == {"firebreak-probe"}
    assert not list(tmp_path.glob("*.jsonl"))  # not written to the local file as well
