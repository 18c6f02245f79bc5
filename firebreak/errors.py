"""Domain errors. Services raise these; each edge maps them exactly once (gRPC status here,
HTTP problem+json at the gateway)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of errors that are the caller's to fix, never the platform's fault."""


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidArgument(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
