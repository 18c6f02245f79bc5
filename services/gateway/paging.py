"""Keyset pages over (created_at, id), newest first, and the UTC times the gateway stores."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Select, and_, or_

from firebreak.errors import InvalidArgument
from services.gateway.schemas import ID_PATTERN


def aware(moment: datetime) -> datetime:
    """SQLite hands stored times back without a zone; every time the gateway stores is UTC."""
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
        if not re.fullmatch(ID_PATTERN, row_id):
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
