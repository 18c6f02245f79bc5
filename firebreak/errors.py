"""Domain errors. Services raise these; each edge maps them exactly once (gRPC status here,
HTTP problem+json at the gateway)."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of errors that are the caller's to fix, never the platform's fault."""


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class Forbidden(DomainError):
    """The caller may see the object but not do this to it."""


class InvalidArgument(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CommandRefused(DomainError):
    """A command the incident's state does not allow now; says the state and what is allowed."""

    def __init__(self, message: str, *, status: str, allowed: Sequence[str]) -> None:
        super().__init__(message)
        self.status = status
        self.allowed = tuple(allowed)


class StaleVersion(DomainError):
    """The caller's If-Match names a version that is no longer current."""

    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(f"the incident is at version {current}, not {expected}")
        self.current = current
