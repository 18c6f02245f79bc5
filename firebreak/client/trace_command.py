"""`firebreak trace INCIDENT`: the incident's trace id from the API, its spans from the local
span files or a Jaeger query API, printed as a tree (trace_tree builds it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import httpx
from rich.markup import escape

from firebreak.client import trace_tree
from firebreak.client.errors import CommandFailed, ExitCode
from firebreak.client.gateway import TIMEOUT_SECONDS, Gateway
from firebreak.client.output import Output

SERVICE_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "red")


def trace(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    incident = gateway.call("GET", f"/v1/incidents/{args.incident}")
    trace_id = incident["trace_id"]
    if not trace_id:
        raise CommandFailed(ExitCode.REFUSED, f"incident {args.incident} has no trace id")
    if args.jaeger:
        source = args.jaeger
        spans = jaeger_spans(args.jaeger, trace_id)
    else:
        directory = args.traces or default_traces_dir()
        if not directory.is_dir():
            raise CommandFailed(
                ExitCode.USAGE, f"{directory}: no such folder of span files (see --traces)"
            )
        source = str(directory)
        spans = trace_tree.read_trace_files(directory, trace_id)
    if not spans:
        raise CommandFailed(ExitCode.REFUSED, f"no spans of trace {trace_id} in {source}")
    tree = trace_tree.build_tree(trace_id, spans)
    if out.as_json:
        out.json({"incident_id": incident["id"], "source": source} | trace_tree.tree_as_dict(tree))
        return
    print_tree(tree, incident["reference"], out)


def default_traces_dir() -> Path:
    """Where `make run` (`firebreak run`) has every process write its spans."""
    return Path(os.environ.get("FIREBREAK_VAR_DIR") or "var") / "traces"


def jaeger_spans(url: str, trace_id: str) -> list[trace_tree.Span]:
    """The trace from a Jaeger query service: GET /api/traces/{traceID}."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/api/traces/{trace_id}", timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as error:
        raise CommandFailed(
            ExitCode.UNREACHABLE, f"cannot reach Jaeger at {url}: {error}"
        ) from None
    if response.status_code == 404:
        return []
    if not response.is_success:
        code = ExitCode.REFUSED if response.status_code < 500 else ExitCode.UNREACHABLE
        raise CommandFailed(code, f"Jaeger at {url} answered {response.status_code}")
    try:
        return trace_tree.spans_from_jaeger(response.json())
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CommandFailed(
            ExitCode.UNREACHABLE, f"Jaeger at {url} answered what is not a trace: {error!r}"
        ) from None


def print_tree(tree: trace_tree.TraceTree, reference: str, out: Output) -> None:
    colours = {
        service: SERVICE_STYLES[index % len(SERVICE_STYLES)]
        for index, service in enumerate(tree.services)
    }
    out.line(
        f"[bold]{escape(reference)}[/] trace {tree.trace_id}: {tree.span_count} spans, "
        f"{', '.join(escape(service) for service in tree.services)}, {tree.duration_ms:,.1f} ms"
    )
    rows = []
    for path, node in trace_tree.walk(tree):
        guides = "".join("   " if last else "│  " for last in path[1:-1])
        branch = ("└─ " if path[-1] else "├─ ") if len(path) > 1 else ""
        span = node.span
        name = escape(span.name)
        if span.status == "ERROR":
            name = f"[red]{name} (error)[/]"
        if node.orphan:
            name += " [dim](parent span not found)[/]"
        hop = ""
        if node.hop is not None:
            hop = f"[bold yellow]{node.hop.ms:+,.1f} ms {node.hop.via}[/]"
        colour = colours[span.service]
        rows.append(
            [
                f"{node.offset_ms:,.1f}",
                f"{node.duration_ms:,.1f}",
                f"[{colour}]{escape(span.service)}[/]",
                f"[dim]{guides}{branch}[/]{name}",
                hop,
            ]
        )
    out.table(["START ms", "DURATION ms", "SERVICE", "SPAN", "HOP"], rows, numeric=(0, 1))
