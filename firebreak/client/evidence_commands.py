"""`firebreak evidence add | verify | export`: an item streamed up from a file, an item
verified by evidence, an incident's export streamed down to a file (each with a progress bar
where someone watches)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from firebreak.client.errors import CommandFailed, ExitCode
from firebreak.client.gateway import CONTENT_TIMEOUT_SECONDS, Gateway
from firebreak.client.output import Output


def add(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    source: Path = args.file
    if not source.is_file():
        raise CommandFailed(ExitCode.USAGE, f"{source}: not a file")
    params = {
        "filename": args.filename or source.name,
        "description": args.description,
        "source": args.source,
        "acquisition": args.acquisition,
    }
    if args.collected_at:
        params["collected_at"] = args.collected_at
    size = source.stat().st_size
    with out.progress(f"Uploading {source.name}", size) as advance:
        record = gateway.upload(
            f"/v1/incidents/{args.incident}/evidence",
            source,
            params=params,
            progress=lambda sent: advance(sent, None),
        )
    if out.as_json:
        out.json(record)
        return
    out.line(
        f"Added evidence [bold]{escape(record['id'])}[/]: {escape(record['filename'])}, "
        f"{record['size_bytes']:,} bytes, SHA-256 {record['sha256']}"
    )


def verify(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    """Evidence re-reads and re-hashes the item and re-chains its custody log; tampered exits
    1, as an export that does not verify does."""
    verification = gateway.call(
        "POST", f"/v1/evidence/{args.target}/verify", timeout=CONTENT_TIMEOUT_SECONDS
    )
    intact = verification["result"] == "intact"
    if out.as_json:
        out.json(verification)
    elif intact:
        out.line(f"[green]INTACT[/]: evidence {escape(args.target)} is as it was collected.")
    else:
        out.line(f"[bold red]TAMPERED[/]: evidence {escape(args.target)}:")
        for difference in verification["differences"]:
            out.line(f"  - {escape(difference['what'])}: {escape(difference['detail'])}")
    if not intact:
        raise CommandFailed(ExitCode.REFUSED, f"evidence {args.target} is not intact")


def export(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    target: Path = args.output or Path(f"evidence-{args.incident}.zip")
    if target.exists():
        raise CommandFailed(ExitCode.USAGE, f"{target} exists: name another file with --output")
    if not target.parent.is_dir():
        raise CommandFailed(ExitCode.USAGE, f"{target.parent}: no such folder")
    with out.progress(f"Exporting {args.incident}", None) as advance:
        written = gateway.download(
            f"/v1/incidents/{args.incident}/evidence/export", target, progress=advance
        )
    export_id = written.headers.get("X-Export-Id")
    if out.as_json:
        out.json(
            {
                "path": str(written.path),
                "size_bytes": written.size_bytes,
                "sha256": written.sha256,
                "export_id": export_id,
            }
        )
        return
    out.line(
        f"Wrote {escape(str(written.path))}: {written.size_bytes:,} bytes, SHA-256 "
        f"{written.sha256}, export {escape(export_id or '-')}. Check it offline "
        f"with: firebreak evidence verify {escape(str(written.path))}"
    )
