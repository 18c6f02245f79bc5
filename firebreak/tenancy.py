"""Which client's data a request may touch: the one place that turns a request into a scope."""

from __future__ import annotations

from firebreak.errors import InvalidArgument


def client_scope(*, client_id: str, all_clients: bool) -> str | None:
    """The client to filter by, or None for every client. Never "everything" by omission."""
    if all_clients:
        return None
    if not client_id:
        raise InvalidArgument("client_id", "is required unless all_clients is set")
    return client_id
