"""An incident's trace as a tree: its spans read from the JSON-lines files every process writes
(firebreak/telemetry.py) or from a Jaeger query API's answer, arranged under their parents,
ordered by start, with each span's offset from the start of the trace and the time each hop to
another service took.

Pure data, no printing: the CLI's `firebreak trace` prints it, and a web page can draw the same
tree as a waterfall."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What carried the hop from a parent to a child in another service, by their kinds; other hops
# are "later" (a command joining the incident's trace long after) or "between services".
HOP_VIA = {("PRODUCER", "CONSUMER"): "on the bus", ("CLIENT", "SERVER"): "in transit"}


@dataclass(frozen=True)
class Span:
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL ("" when the source has none)
    start_ns: int  # since the epoch
    end_ns: int
    status: str = ""  # ERROR, OK or UNSET ("" when the source has none)


@dataclass(frozen=True)
class Hop:
    """The time between a parent's hop and its child's start in another service: from the
    parent's end when the child started after it (a message waiting on the bus), else from the
    parent's start (a call the parent waited on)."""

    ms: float
    via: str  # "on the bus", "in transit", "later" or "between services"


@dataclass(frozen=True)
class Node:
    span: Span
    offset_ms: float  # from the start of the trace
    duration_ms: float
    hop: Hop | None  # only for a child in another service than its parent's
    orphan: bool  # its parent is not among the spans read (not exported yet, or lost)
    children: tuple[Node, ...]


@dataclass(frozen=True)
class TraceTree:
    trace_id: str
    roots: tuple[Node, ...]
    span_count: int
    duration_ms: float  # from the first start to the last end
    services: tuple[str, ...]  # in order of first appearance


def read_trace_files(directory: Path, trace_id: str) -> list[Span]:
    """The trace's spans in `<directory>/*.jsonl`, as JsonLinesSpanExporter writes them."""
    wanted = trace_id.lower()
    spans = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if wanted not in line:  # most lines are other traces': skip parsing them
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line still being written
                if record.get("trace_id") == wanted:
                    spans.append(span_from_record(record))
    return spans


def span_from_record(record: Mapping[str, Any]) -> Span:
    return Span(
        span_id=record["span_id"],
        parent_span_id=record.get("parent_span_id"),
        service=str(record.get("service") or "?"),
        name=record["name"],
        kind=record.get("kind") or "",
        start_ns=int(record["start_ns"]),
        end_ns=int(record["end_ns"]),
        status=record.get("status") or "",
    )


def spans_from_jaeger(document: Mapping[str, Any]) -> list[Span]:
    """The spans of the trace in an answer of Jaeger's GET /api/traces/{traceID}: `data[0]`,
    with `spans[]` (`spanID`, `operationName`, `references`, `startTime` and `duration` in
    µs, `processID`, `tags`) and `processes` (`serviceName` by process id)."""
    traces = document.get("data") or []
    if not traces:
        return []
    trace = traces[0]
    processes = trace.get("processes") or {}
    spans = []
    for item in trace.get("spans") or []:
        parents = [
            reference["spanID"]
            for reference in item.get("references") or []
            if reference.get("refType") == "CHILD_OF"
        ]
        tags = {tag.get("key"): tag.get("value") for tag in item.get("tags") or []}
        start_ns = int(item["startTime"]) * 1000
        spans.append(
            Span(
                span_id=item["spanID"],
                parent_span_id=parents[0] if parents else None,
                service=str(processes.get(item.get("processID"), {}).get("serviceName") or "?"),
                name=item["operationName"],
                kind=str(tags.get("span.kind") or "").upper(),
                start_ns=start_ns,
                end_ns=start_ns + int(item["duration"]) * 1000,
                status="ERROR" if tags.get("error") in (True, "true") else "",
            )
        )
    return spans


def build_tree(trace_id: str, spans: Iterable[Span]) -> TraceTree:
    """The spans under their parents, each level ordered by start; a span whose parent is not
    among them is a root, marked an orphan."""
    unique = {span.span_id: span for span in spans}  # a span read twice counts once
    if not unique:
        return TraceTree(trace_id, (), 0, 0.0, ())
    ordered = sorted(unique.values(), key=lambda span: (span.start_ns, span.end_ns))
    children: dict[str, list[Span]] = {}
    for span in ordered:
        if span.parent_span_id in unique:
            children.setdefault(span.parent_span_id, []).append(span)
    origin = ordered[0].start_ns

    def node(span: Span, parent: Span | None) -> Node:
        return Node(
            span=span,
            offset_ms=_ms(span.start_ns - origin),
            duration_ms=_ms(span.end_ns - span.start_ns),
            hop=_hop(parent, span),
            orphan=parent is None and span.parent_span_id is not None,
            children=tuple(node(child, span) for child in children.get(span.span_id, [])),
        )

    roots = [span for span in ordered if span.parent_span_id not in unique]
    return TraceTree(
        trace_id=trace_id,
        roots=tuple(node(root, None) for root in roots),
        span_count=len(unique),
        duration_ms=_ms(max(span.end_ns for span in ordered) - origin),
        services=tuple(dict.fromkeys(span.service for span in ordered)),
    )


def _hop(parent: Span | None, child: Span) -> Hop | None:
    if parent is None or parent.service == child.service:
        return None
    after = child.start_ns >= parent.end_ns
    since = parent.end_ns if after else parent.start_ns
    via = HOP_VIA.get((parent.kind, child.kind), "later" if after else "between services")
    return Hop(ms=_ms(child.start_ns - since), via=via)


def _ms(nanoseconds: int) -> float:
    return round(nanoseconds / 1_000_000, 3)


def walk(tree: TraceTree) -> Iterator[tuple[tuple[bool, ...], Node]]:
    """Every node depth first, in the tree's order, with whether each node on its path from a
    root (itself last) is the last of its siblings: its depth, and what a printed tree needs
    to draw its guides."""

    def below(
        path: tuple[bool, ...], nodes: Sequence[Node]
    ) -> Iterator[tuple[tuple[bool, ...], Node]]:
        for index, current in enumerate(nodes):
            here = (*path, index == len(nodes) - 1)
            yield here, current
            yield from below(here, current.children)

    return below((), tree.roots)


def tree_as_dict(tree: TraceTree) -> dict[str, Any]:
    """The tree as JSON-ready data (what `firebreak trace --json` prints)."""

    def node(current: Node) -> dict[str, Any]:
        span = current.span
        return {
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id,
            "service": span.service,
            "name": span.name,
            "kind": span.kind,
            "status": span.status,
            "offset_ms": current.offset_ms,
            "duration_ms": current.duration_ms,
            "hop": {"ms": current.hop.ms, "via": current.hop.via} if current.hop else None,
            "orphan": current.orphan,
            "children": [node(child) for child in current.children],
        }

    return {
        "trace_id": tree.trace_id,
        "span_count": tree.span_count,
        "duration_ms": tree.duration_ms,
        "services": list(tree.services),
        "roots": [node(root) for root in tree.roots],
    }
