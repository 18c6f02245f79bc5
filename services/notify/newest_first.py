"""Newest-first pages of a notify table (schedules, escalation policies), with cursors that
name the last row shown: its creation time and id."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, Table, and_, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def aware(moment: datetime) -> datetime:
    """SQLite hands stored times back without a zone; every time stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def page(
    connection: AsyncConnection,
    query: Select[Any],
    table: Table,
    *,
    page_size: int,
    page_token: str,
) -> tuple[list[Row[Any]], str]:
    """One page of `query` over `table`, newest first, and the next page's token ("" on the
    last page)."""
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if page_token:
        moment, last_id = _decode(page_token)
        query = query.where(
            or_(
                table.c.created_at < moment,
                and_(table.c.created_at == moment, table.c.id < last_id),
            )
        )
    query = query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(size + 1)
    rows = list((await connection.execute(query)).all())
    if len(rows) <= size:
        return rows, ""
    rows = rows[:size]
    return rows, _encode(aware(rows[-1].created_at), rows[-1].id)


def _encode(created_at: datetime, row_id: str) -> str:
    text = f"{created_at.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(token: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        moment, _, row_id = text.partition("|")
        if not ID.fullmatch(row_id):
            raise ValueError(text)
        return aware(datetime.fromisoformat(moment)), row_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidArgument("cursor", "is not a cursor this list returned") from error
