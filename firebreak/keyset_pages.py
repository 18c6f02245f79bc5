"""Keyset pages over (created_at, id), newest first, with cursors naming the last row shown;
the ids such a page (and any path) may hold; the UTC times the services store.

Shared by the gateway (people, keys) and notify (schedules, policies)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Row, Select, Table, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.errors import InvalidArgument

# Ids are UUIDs, or a few fixed names ("operator", "bootstrap", "default", …): anything else
# cannot exist, and must not reach a database (PostgreSQL refuses a NUL outright).
ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
ID = re.compile(ID_PATTERN)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def aware(moment: datetime) -> datetime:
    """SQLite hands stored times back without a zone; every time Firebreak stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def aware_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def encode_cursor(created_at: datetime, row_id: str) -> str:
    text = f"{aware(created_at).isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, row_id = text.partition("|")
        if not ID.fullmatch(row_id):
            raise ValueError(text)
        return aware(datetime.fromisoformat(moment)), row_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidArgument("cursor", "is not a cursor this list returned") from error


def newest_first(
    query: Select[Any],
    created_at: Column[datetime],
    row_id: Column[str],
    *,
    limit: int,
    cursor: str | None,
) -> Select[Any]:
    """`query` ordered newest first, after `cursor`, one row more than the page (to tell
    whether there is a next page)."""
    if cursor:
        moment, last_id = decode_cursor(cursor)
        query = query.where(or_(created_at < moment, and_(created_at == moment, row_id < last_id)))
    return query.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)


def page_of(rows: Sequence[Any], *, limit: int) -> tuple[list[Any], str | None]:
    """The page's rows and the cursor of the next page (None on the last page)."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, encode_cursor(page[-1].created_at, page[-1].id)


async def read_page(
    connection: AsyncConnection, query: Select[Any], table: Table, *, limit: int, cursor: str
) -> tuple[list[Row[Any]], str]:
    """One page of `query` over `table` (columns created_at and id), as a gRPC list answers
    it: a limit of 0 is the default, and the last page's cursor is ""."""
    size = min(limit or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    ordered = newest_first(query, table.c.created_at, table.c.id, limit=size, cursor=cursor)
    rows, next_cursor = page_of((await connection.execute(ordered)).all(), limit=size)
    return rows, next_cursor or ""
