"""Which client's data a request may touch: the one place that turns a request into a scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from firebreak.errors import InvalidArgument


class ScopedRequest(Protocol):
    """Every read request in proto/ carries these two fields."""

    client_id: str
    all_clients: bool


class ScopedByIdRequest(ScopedRequest, Protocol):
    """A read of one item by its id that a walled staff member makes: it may name a list of
    clients instead (their wall, which their scope token covers)."""

    @property
    def client_ids(self) -> Sequence[str]: ...


def client_scope(request: ScopedRequest) -> str | None:
    """The client to filter by, or None for every client. Never "everything" by omission."""
    if request.all_clients:
        return None
    if not request.client_id:
        raise InvalidArgument("client_id", "is required unless all_clients is set")
    return request.client_id


def by_id_scope(request: ScopedByIdRequest) -> str | None:
    """client_scope for a read by id; with client_ids, None, and the item found must then pass
    `found_within`."""
    if not request.client_ids:
        return client_scope(request)
    if request.client_id or request.all_clients:
        raise InvalidArgument("client_ids", "name client_id, client_ids or all_clients, not two")
    return None


def found_within(request: ScopedByIdRequest, client_id: str) -> bool:
    """Whether an item of `client_id`, read with `by_id_scope`, is one the request asks for."""
    return not request.client_ids or client_id in request.client_ids
