"""Which client's data a request may touch: the one place that turns a request into a scope."""

from __future__ import annotations

from typing import Protocol

from firebreak.errors import InvalidArgument


class ScopedRequest(Protocol):
    """Every read request in proto/ carries these two fields."""

    client_id: str
    all_clients: bool


def client_scope(request: ScopedRequest) -> str | None:
    """The client to filter by, or None for every client. Never "everything" by omission."""
    if request.all_clients:
        return None
    if not request.client_id:
        raise InvalidArgument("client_id", "is required unless all_clients is set")
    return request.client_id
