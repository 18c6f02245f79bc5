"""What a timeline entry says: a line in the platform's own words, and beside it, as named values,
what people wrote (titles, reasons, notes, names). A value is never spliced into a line, so
nothing a person types can read as the platform's own statement (issue 13 §4).

A line holds only what the platform issued or counted: references, priorities, states, enum
values, counts, times. A person's name is a value too: it reads as who did something, never as
what happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from firebreak.api.events.v1.events_pb2 import Person


@dataclass(frozen=True)
class Field:
    name: str  # what the value is, in snake case: title, reason, by, …
    value: str  # as written


Fields = tuple[Field, ...]


def fields(*pairs: tuple[str, str]) -> Fields:
    """The named values that are not empty, in order."""
    return tuple(Field(name, value) for name, value in pairs if value)


def each(name: str, people: Iterable[Person]) -> tuple[tuple[str, str], ...]:
    """One value per person (a name, else the platform's id for them), for `fields`."""
    return tuple((name, person.name or person.id) for person in people)


def people(count: int) -> str:
    return "1 person" if count == 1 else f"{count} people"


@dataclass(frozen=True)
class Lines:
    """An entry's words for staff, and for the client: `client` None means the entry is
    internal. `client_fields` are the values the client reads beside its line."""

    internal: str
    client: str | None = None
    fields: Fields = ()
    client_fields: Fields = ()


def stored(values: Fields) -> list[dict[str, str]]:
    """As the timeline's JSON columns keep them."""
    return [{"name": field.name, "value": field.value} for field in values]
