"""Documents the gateway answers by the Accept header: JSON, Markdown or PDF (review renders
the last two), and what a document's download looks like."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.review.v1 import review_pb2
from firebreak.database import reading
from services.gateway.models import clients
from services.gateway.problems import Problem

JSON, MARKDOWN, PDF = "application/json", "text/markdown", "application/pdf"
FORMATS = {JSON: "json", MARKDOWN: "markdown", PDF: "pdf"}


def _ranges(accept: str) -> list[tuple[float, int, str]]:
    """The media ranges of an Accept header with their quality, best first (ties: in order)."""
    ranges = []
    for index, part in enumerate(filter(None, (item.strip() for item in accept.split(",")))):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((-quality, index, media.lower()))
    return sorted(ranges)


def negotiate(accept: str | None, offered: tuple[str, ...] = (JSON, MARKDOWN, PDF)) -> str:
    """ "json", "markdown" or "pdf": the offered type the caller prefers (JSON when it names
    none, or anything); a 406 when it accepts none of them."""
    if not accept:
        return FORMATS[offered[0]]
    for negative_quality, _, media in _ranges(accept):
        if negative_quality >= 0:
            continue  # q=0: not acceptable
        family = media.removesuffix("*")
        matching = [item for item in offered if media == "*/*" or item.startswith(family)]
        if matching and (media.endswith("/*") or media in offered):
            return FORMATS[media if media in offered else matching[0]]
    raise Problem(406, f"Acceptable answers here: {', '.join(offered)}.")


def download_headers(document: review_pb2.Document) -> dict[str, str]:
    return {"Content-Disposition": f'inline; filename="{document.filename}"'}


async def client_name(engine: AsyncEngine, client_id: str) -> str:
    """The client's name, as the documents' title pages show it."""
    async with reading(engine) as connection:
        name = (
            await connection.execute(select(clients.c.name).where(clients.c.id == client_id))
        ).scalar()
    return str(name or "")
