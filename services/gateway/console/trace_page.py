"""Where an incident spent its time: its trace as a waterfall, read from the span files every
local process writes (firebreak/telemetry.py), as `firebreak trace` prints it. Staff only: a
client's view of an incident holds no trace."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

from firebreak.client.trace_tree import build_tree, read_trace_files, walk
from services.gateway.console.web import SignedIn, page
from services.gateway.dependencies import incident_id_path

router = APIRouter(prefix="/console/incidents/{incident_id}", include_in_schema=False)


@router.get("/trace")
async def trace(request: Request, incident_id: str, signed_in: SignedIn) -> Response:
    incident_id = await incident_id_path(incident_id)
    async with signed_in.api(request) as api:
        incident = await api.get(f"/v1/incidents/{incident_id}")
        if not signed_in.principal.is_staff:
            return page(request, "message.html", 404, heading="Not found", message="Not found.")
    traces: Path = request.app.state.traces_dir
    spans = await asyncio.to_thread(read_trace_files, traces, incident["trace_id"])
    tree = build_tree(incident["trace_id"], spans)
    rows = [
        {
            "depth": len(path) - 1,
            "node": node,
            "left": 100 * node.offset_ms / tree.duration_ms if tree.duration_ms else 0,
            "width": max(0.2, 100 * node.duration_ms / tree.duration_ms)
            if tree.duration_ms
            else 100,
        }
        for path, node in walk(tree)
    ]
    return page(request, "trace.html", viewer=signed_in, incident=incident, tree=tree, rows=rows)
