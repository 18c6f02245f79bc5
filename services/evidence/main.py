"""Evidence's composition root."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.consumer import IncidentOwners
from firebreak.database import create_engine
from firebreak.outbox import Outbox
from firebreak.runtime import ServiceProcess, run_service
from firebreak.settings import Settings
from firebreak.startup_migration import ensure_migrated
from services.evidence import handlers, keyring, legacy_import, models, schedules
from services.evidence.blob_store import BlobStore
from services.evidence.server import EvidenceServicer

# Blob work (hashing, encryption, file I/O) runs off the event loop, one chunk per call, in one
# thread: every thread that allocates the 1 MiB chunks gets a malloc arena of its own that keeps
# freed chunks, and with the default pool's six, memory grew by tens of MiB more per large
# item. Concurrent uploads interleave chunk by chunk.
BLOB_THREADS = 1


async def serve(settings: Settings) -> None:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=BLOB_THREADS, thread_name_prefix="evidence-blobs")
    )
    # Keys first: without them (or with a master key the stored blobs were not wrapped with)
    # evidence refuses to start, with one line saying which.
    master_key, signer = keyring.master_key(settings), keyring.signer(settings)
    engine = create_engine(settings.database_url("evidence"))
    await ensure_migrated(engine, "evidence")
    await keyring.check_master_key(engine, master_key)
    store = BlobStore(settings.evidence_store, master_key)
    await asyncio.to_thread(store.remove_stale_uploads)
    await legacy_import.import_legacy(engine, store)
    verify_interval = timedelta(seconds=settings.evidence_verify_interval_seconds)
    outbox = Outbox(engine, models.outbox, poll_seconds=settings.outbox_poll_seconds)
    process = ServiceProcess(
        name="evidence",
        engine=engine,
        outbox=outbox,
        servicer=EvidenceServicer(
            engine,
            outbox,
            store,
            signer,
            max_bytes=settings.evidence_max_bytes,
            verify_interval=verify_interval,
        ),
        add_servicer=evidence_pb2_grpc.add_EvidenceServiceServicer_to_server,
        grpc_service=evidence_pb2.DESCRIPTOR.services_by_name["EvidenceService"].full_name,
        handlers=handlers.HANDLERS,
        inbox=models.inbox,
        owners=IncidentOwners(
            models.known_incidents.c.incident_id, models.known_incidents.c.client_id
        ),
        workers=(
            (
                "evidence re-verification",
                partial(
                    schedules.reverify,
                    engine=engine,
                    outbox=outbox,
                    store=store,
                    interval=verify_interval,
                ),
            ),
            (
                "custody signing",
                partial(
                    schedules.sign_heads,
                    engine=engine,
                    signer=signer,
                    interval=timedelta(seconds=settings.evidence_sign_interval_seconds),
                ),
            ),
        ),
    )
    await run_service(settings, process)
