"""Review's documents (the post-incident review, the client report, the monthly client summary)
as plain blocks, and their Markdown. pdf_documents.py lays the same blocks out as a PDF, so the
two formats never say different things."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from firebreak.api.review.v1 import review_pb2
from firebreak.keyset_pages import aware

# Around each value people wrote, in a timeline entry as a document shows it; a value's own
# curly quotes are shown straight, so only the platform opens and closes a value.
OPEN, CLOSE = "“", "”"


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    widths: tuple[float, ...] = ()  # fractions of the page's width; empty: even
    empty: str = "None."  # said instead of an empty table


@dataclass(frozen=True)
class Facts:
    """Label and value pairs, e.g. an incident's reference, priority and status."""

    pairs: Sequence[tuple[str, str]]


Block = Heading | Paragraph | Table | Facts


@dataclass(frozen=True)
class Document:
    kind: str  # e.g. "Post-incident review"
    title: str
    firm: str
    cover: list[tuple[str, str]]  # what the title page lists
    blocks: list[Block] = field(default_factory=list)
    filename: str = "document"  # without extension
    notice: str = ""  # e.g. "Confidential: for the firm's staff"


def when(moment: datetime | None) -> str:
    return aware(moment).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "—"


def quoted(value: str) -> str:
    return OPEN + value.replace(OPEN, '"').replace(CLOSE, '"') + CLOSE


def entry_text(entry: review_pb2.TimelineEntry) -> str:
    """A timeline entry's line, then each value people wrote, named and quoted: the reader
    tells the platform's words from what someone typed."""
    values = "; ".join(
        f"{field.name.replace('_', ' ')}: {quoted(field.value)}" for field in entry.fields
    )
    return f"{entry.summary} — {values}" if values else entry.summary


def span(seconds: float | None) -> str:
    """A duration as people read it: 1 h 05 min, 2 d 3 h, 45 s."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(document: Document) -> str:
    lines = [f"# {document.kind}: {document.title}", ""]
    if document.notice:
        lines += [f"*{document.notice}*", ""]
    lines += [f"- **{label}**: {value}" for label, value in document.cover]
    lines.append("")
    for block in document.blocks:
        if isinstance(block, Heading):
            lines += [f"## {block.text}", ""]
        elif isinstance(block, Paragraph):
            lines += [block.text or "—", ""]
        elif isinstance(block, Facts):
            lines += [f"- **{label}**: {value}" for label, value in block.pairs]
            lines.append("")
        elif not block.rows:
            lines += [block.empty, ""]
        else:
            lines.append("| " + " | ".join(block.columns) + " |")
            lines.append("|" + "---|" * len(block.columns))
            lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in block.rows]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
