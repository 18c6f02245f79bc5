"""The evidence phase of `make bench`: one item uploaded through the gateway, downloaded back
and exported (the incident's ZIP), `--evidence-mib` MiB (1 GiB; `--quick`: 64 MiB).

The body is generated on the fly (a counter in front of one random MiB, so every MiB differs)
and hashed as it goes out; nothing holds the item whole, in this process or the platform. The
upload counts from the request to its 201, the download and export from the request to their
last byte; both digests must match what was sent (the phase fails otherwise; the export's
contents are the tests' to check, here it is only counted). Over the phase, the RSS of gateway
and evidence is sampled: their peak against their RSS just before it is the growth that
streaming must keep small (target: under 64 MiB each).

This process hashes (SHA-256) both ways on the same CPUs as the platform, which slows it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from bench.figures import fmt
from bench.load import INCIDENT
from bench.observe import MemorySampler

MIB = 1024 * 1024
TARGET_GROWTH_MIB = 64
WATCHED = ("gateway", "evidence")


class _Body:
    """The item as it is sent: `size_mib` MiB, hashed as each MiB goes out."""

    def __init__(self, size_mib: int) -> None:
        self.size_mib = size_mib
        self.seed = os.urandom(MIB)
        self.sha256 = hashlib.sha256()

    async def pieces(self) -> AsyncIterator[bytes]:
        for number in range(self.size_mib):
            piece = number.to_bytes(8, "big") + self.seed[8:]
            self.sha256.update(piece)
            yield piece


async def _incident_known_to_evidence(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Reports an incident and waits until evidence accepts items for it (it learns of
    incidents from the bus), by submitting a small item until it is not a 404."""
    reported = await http.post(
        "/v1/incidents",
        json=INCIDENT,
        headers=headers | {"Idempotency-Key": secrets.token_hex(8)},
    )
    reported.raise_for_status()
    incident_id: str = reported.json()["id"]
    deadline = time.monotonic() + 60
    while True:
        answer = await http.post(
            f"/v1/incidents/{incident_id}/evidence",
            params={"filename": "warm-up.txt"},
            content=b"the bench's evidence phase",
            headers=headers,
        )
        if answer.status_code == 201:
            return incident_id
        if answer.status_code != 404 or time.monotonic() > deadline:
            answer.raise_for_status()
            raise RuntimeError(f"evidence never learnt of incident {incident_id}")
        await asyncio.sleep(0.2)


async def run(
    gateway_url: str, admin_key: str, pids: dict[str, int], size_mib: int
) -> dict[str, Any]:
    """Uploads and downloads one item of `size_mib` MiB; returns the phase's figures."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    watched = {label: pids[label] for label in WATCHED}
    sampler = MemorySampler(watched, interval=0.1)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=600) as http:
        incident_id = await _incident_known_to_evidence(http, admin)
        before = sampler.sample()
        sampler.loaded.set()
        sampler.start()
        try:
            body = _Body(size_mib)
            began = time.monotonic()
            created = await http.post(
                f"/v1/incidents/{incident_id}/evidence",
                params={"filename": "bench.img", "acquisition": "image"},
                content=body.pieces(),
                headers=admin | {"Content-Type": "application/octet-stream"},
            )
            upload_seconds = time.monotonic() - began
            created.raise_for_status()
            item = created.json()

            received, back = 0, hashlib.sha256()
            began = time.monotonic()
            async with http.stream(
                "GET", f"/v1/evidence/{item['id']}/content", headers=admin
            ) as download:
                download.raise_for_status()
                async for chunk in download.aiter_bytes(MIB):
                    back.update(chunk)
                    received += len(chunk)
            download_seconds = time.monotonic() - began

            exported = 0
            began = time.monotonic()
            async with http.stream(
                "GET", f"/v1/incidents/{incident_id}/evidence/export", headers=admin
            ) as export:
                export.raise_for_status()
                async for chunk in export.aiter_bytes(MIB):
                    exported += len(chunk)
            export_seconds = time.monotonic() - began
        finally:
            sampler.stop()
    size = size_mib * MIB
    sent = body.sha256.hexdigest()
    stored = item["sha256"] == sent and item["size_bytes"] == size
    downloaded = back.hexdigest() == sent and received == size
    growth = {label: sampler.peak[label] - before[label] for label in WATCHED}
    return {
        "size_mib": size_mib,
        "upload_mb_per_s": round(size / upload_seconds / 1e6, 1),
        "download_mb_per_s": round(size / download_seconds / 1e6, 1),
        "upload_seconds": round(upload_seconds, 2),
        "download_seconds": round(download_seconds, 2),
        "export_mb_per_s": round(exported / export_seconds / 1e6, 1),
        "export_seconds": round(export_seconds, 2),
        "export_bytes": exported,
        "stored_digest_matches": stored,
        "downloaded_digest_matches": downloaded,
        "rss_before_mib": {label: round(before[label] / MIB, 1) for label in WATCHED},
        "rss_peak_mib": {label: round(sampler.peak[label] / MIB, 1) for label in WATCHED},
        "rss_growth_mib": {label: round(growth[label] / MIB, 1) for label in WATCHED},
        "rss_growth_within_target": all(
            value < TARGET_GROWTH_MIB * MIB for value in growth.values()
        ),
        "ok": stored and downloaded and exported > size,
    }


def table_lines(evidence: dict[str, Any]) -> list[str]:
    growth, peak = evidence["rss_growth_mib"], evidence["rss_peak_mib"]
    within = "within" if evidence["rss_growth_within_target"] else "OVER"
    return [
        "",
        f"8. evidence: {'OK' if evidence['ok'] else 'FAILED'} (one item of "
        f"{evidence['size_mib']} MiB through the gateway, generated on the fly)",
        f"   upload           {fmt(evidence['upload_mb_per_s'])} MB/s "
        f"({evidence['upload_seconds']} s)   digest as sent: "
        f"{'yes' if evidence['stored_digest_matches'] else 'NO'}",
        f"   download         {fmt(evidence['download_mb_per_s'])} MB/s "
        f"({evidence['download_seconds']} s)   digest as sent: "
        f"{'yes' if evidence['downloaded_digest_matches'] else 'NO'}",
        f"   export (ZIP)     {fmt(evidence['export_mb_per_s'])} MB/s "
        f"({evidence['export_seconds']} s, {evidence['export_bytes']} bytes)",
        f"   RSS growth       gateway {growth['gateway']} MiB (peak {peak['gateway']})   "
        f"evidence {growth['evidence']} MiB (peak {peak['evidence']})   "
        f"{within} the target of {TARGET_GROWTH_MIB} MiB each",
        "   (the bench process hashes both ways on the same CPUs as the platform)",
    ]
