"""Keyset pages over (created_at, id), newest first, with cursors naming the last row shown,
capped in items and in bytes (FIREBREAK_LIST_PAGE_MAX_BYTES); the ids such a page (and any
path) may hold; the UTC times the services store.

Shared by the gateway (people, keys, the audit log), notify (schedules, policies) and intake,
whose incident pages (over its own sequence) are filled by fill_page too."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, Row, Select, Table, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.errors import InvalidArgument

# Ids are UUIDs, or a few fixed names ("operator", "bootstrap", "default", …): anything else
# cannot exist, and must not reach a database (PostgreSQL refuses a NUL outright).
ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
ID = re.compile(ID_PATTERN)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

T = TypeVar("T")


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


def fill_page(
    items: Sequence[T], *, limit: int, max_bytes: int, size_of: Callable[[T], int]
) -> list[T]:
    """The first items that make a page: at most `limit`, and no more than fit in `max_bytes`
    as `size_of` measures them serialised. The first item comes alone when larger than that:
    a page is never empty while items are left."""
    page: list[T] = []
    size = 0
    for item in items[:limit]:
        size += size_of(item)
        if page and size > max_bytes:
            break
        page.append(item)
    return page


def json_size(body: Mapping[str, Any]) -> int:
    """About how many bytes `body` takes in a JSON answer: what the gateway's own pages (people,
    keys, the audit log) measure against the byte cap."""
    return len(json.dumps(body, default=str, separators=(",", ":")))


def page_of(
    rows: Sequence[Any],
    *,
    limit: int,
    max_bytes: int = 0,
    size_of: Callable[[Any], int] | None = None,
) -> tuple[list[Any], str | None]:
    """The page's rows and the cursor of the next page (None on the last page); `rows` holds
    one more than a page when there is a next one. With `size_of`, the page is also capped at
    `max_bytes` (fill_page)."""
    if size_of is None:
        page = list(rows[:limit])
    else:
        page = fill_page(rows, limit=limit, max_bytes=max_bytes, size_of=size_of)
    if len(page) == len(rows):
        return page, None
    return page, encode_cursor(page[-1].created_at, page[-1].id)


async def read_page(
    connection: AsyncConnection,
    query: Select[Any],
    table: Table,
    *,
    limit: int,
    cursor: str,
    max_bytes: int,
    size_of: Callable[[Row[Any]], int],
) -> tuple[list[Row[Any]], str]:
    """One page of `query` over `table` (columns created_at and id), as a gRPC list answers
    it: a limit of 0 is the default, the page holds no more than `max_bytes` as `size_of`
    measures the rows' messages, and the last page's cursor is ""."""
    size = min(limit or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    ordered = newest_first(query, table.c.created_at, table.c.id, limit=size, cursor=cursor)
    rows, next_cursor = page_of(
        (await connection.execute(ordered)).all(),
        limit=size,
        max_bytes=max_bytes,
        size_of=size_of,
    )
    return rows, next_cursor or ""
