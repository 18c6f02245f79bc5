"""On-call schedules: who is on call at a given moment. Pure: no database, no I/O.

A schedule has a time zone (IANA), layers and overrides.

Layers. A layer rotates through its participants in order, wrapping round; a person may be listed
more than once. Its rotation is one of:

- "daily": the shift changes every day at `handoff_time` on the schedule's clocks.
- "weekly": the shift changes every 7th day at `handoff_time`, on the weekday of the first handoff.
- {"hours": N}: the shift changes every N hours of elapsed time after the first handoff.

Daily and weekly handoffs are wall-clock times: a 09:00 handoff stays at 09:00 local through
daylight-saving changes, so the shift across a spring-forward night lasts 23 hours and the one
across a fall-back night 25. The shift in force is found by counting local calendar days between
the first handoff's date and the moment's, which is exact and takes the same time for a moment
years after the start as for one the next day.

An N-hour rotation counts elapsed time instead (UTC arithmetic): every shift lasts exactly N
hours, so a 12-hour rotation never hands someone an 11- or 13-hour shift at a DST change. The
price is that its handoffs move on the clock: 09:00/21:00 in winter London are 10:00/22:00 in
summer. We chose that because N need not divide a day (8, 36, 72 hours...), so there is no local
grid for such shifts to stay on, and because only elapsed time keeps every handoff out of the
gaps and folds below. A team that wants handoffs fixed on the clock uses "daily" or "weekly".

The start. A layer starts at its first handoff: the first instant at or after `starts_at` at which
the schedule's clocks show `handoff_time` (for {"hours": N} too, which uses `handoff_time` only
for this). Participant 0's shift begins there. Before it nobody from that layer is on call: with
handoff 09:00, a layer whose `starts_at` is Wednesday 10:00 starts on Thursday 09:00 and has
nobody on call from Wednesday 10:00 until then. To hand off weekly on Mondays, start on a Monday.

Clock times that happen twice or never. On a fall-back day a handoff time in the repeated hour
means its first occurrence (fold=0). On a spring-forward day a handoff time in the skipped hour
means the first valid instant after the gap, which is the jump itself: a 02:30 handoff in New York
on 2027-03-14 (clocks jump 02:00 -> 03:00) happens at 03:00 EDT. (Reading 02:30 with fold=0 and
normalising it through UTC would give 03:30, as far past the jump as 02:30 is into the gap; a
handoff should not depend on where in the gap it was set.) In London both are 01:00-02:00 local:
skipped in March (01:00 GMT -> 02:00 BST), lived twice in October (BST, then GMT). A 02:30
London handoff is therefore never in a gap.

Layers stack bottom to top as listed (as in PagerDuty): at any moment the last layer with someone
on call wins. Layers never end, so a layer below another shows only before the upper one starts.

Overrides win over every layer for their half-open interval [from, to). Where overrides overlap,
the one that starts latest wins (a short cover booked inside a longer one); on equal starts, the
one listed last.

All datetimes are aware. Those returned are in UTC: two datetimes in the same ZoneInfo compare and
subtract by wall-clock reading, ignoring fold and offsets, which is wrong across a DST change;
callers show them in the schedule's time zone."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Rotation: TypeAlias = Literal["daily", "weekly"] | timedelta

ROTATION_DAYS = {"daily": 1, "weekly": 7}
MAX_PARTICIPANTS = 50
MIN_ROTATION_HOURS = 1
MAX_ROTATION_HOURS = 24 * 28
# The schedules table's column widths.
MAX_NAME = 200
MAX_TIMEZONE = 64
MAX_PERSON_ID = 200
HANDOFF_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# A schedule dated outside these years is a typo, and keeping well inside datetime's range
# (years 1 to 9999) means counting days forward or back from one can never overflow.
EARLIEST_YEAR = 1970
LATEST_YEAR = 2999


class ScheduleError(ValueError):
    """A schedule body that cannot be used; `field` names where, e.g. "layers.0.handoff_time"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Layer:
    participants: tuple[str, ...]
    rotation: Rotation
    handoff_time: time  # wall-clock time in the schedule's zone, no tzinfo
    starts_at: datetime  # aware; the layer starts at the first handoff at or after it

    def __post_init__(self) -> None:
        # parse_schedule checks all this with field names; a layer built in code could still
        # break the arithmetic, and should fail here rather than in the middle of a lookup.
        if not self.participants:
            raise ValueError("a layer needs at least one participant")
        if isinstance(self.rotation, timedelta):
            if self.rotation <= timedelta(0):
                raise ValueError("a layer's rotation must be a positive duration")
        elif self.rotation not in ROTATION_DAYS:
            raise ValueError(f"unknown rotation {self.rotation!r}")
        if self.handoff_time.tzinfo is not None:
            raise ValueError("handoff_time is a wall-clock time and takes no tzinfo")
        _require_aware(self.starts_at, "starts_at")


@dataclass(frozen=True)
class Override:
    person_id: str
    starts_at: datetime  # aware, included
    ends_at: datetime  # aware, excluded

    def __post_init__(self) -> None:
        _require_aware(self.starts_at, "starts_at")
        _require_aware(self.ends_at, "ends_at")
        if _utc(self.ends_at) <= _utc(self.starts_at):
            raise ValueError("an override must end after it starts")


@dataclass(frozen=True)
class Schedule:
    timezone: ZoneInfo
    layers: tuple[Layer, ...]
    overrides: tuple[Override, ...] = ()
    name: str = ""


# --- who is on call -----------------------------------------------------------------------------


def on_call(schedule: Schedule, at: datetime) -> str | None:
    """The person on call at `at` (aware), or None when no override and no layer covers it."""
    at = _utc(at)
    override = _override_at(schedule.overrides, at)
    if override is not None:
        return override.person_id
    for layer in reversed(schedule.layers):
        shift = shift_at(layer, schedule.timezone, at)
        if shift is not None:
            return shift[0]
    return None


def shift_at(layer: Layer, zone: ZoneInfo, at: datetime) -> tuple[str, datetime, datetime] | None:
    """That layer's shift at `at`: (person, start, end), start included, end excluded, in UTC;
    None before the layer starts. Overrides and other layers play no part."""
    at = _utc(at)
    first_day, first = _first_handoff(layer, zone)
    if at < first:
        return None
    count = len(layer.participants)
    if isinstance(layer.rotation, timedelta):
        index = (at - first) // layer.rotation
        start = first + index * layer.rotation
        return layer.participants[index % count], start, start + layer.rotation
    days = ROTATION_DAYS[layer.rotation]
    index = (_handoff_day(layer.handoff_time, zone, at) - first_day).days // days
    start_day = first_day + timedelta(days=index * days)
    return (
        layer.participants[index % count],
        _wall_clock(start_day, layer.handoff_time, zone),
        _wall_clock(start_day + timedelta(days=days), layer.handoff_time, zone),
    )


def next_handoffs(
    schedule: Schedule, after: datetime, count: int
) -> list[tuple[datetime, str | None]]:
    """The next `count` moments strictly after `after` at which the person on call changes, each
    with who comes on (None: nobody). Fewer when the schedule stops changing: a one-person
    layer with no overrides left ahead changes no more."""
    if count < 0:
        raise ValueError("count must not be negative")
    moment = _utc(after)
    current = on_call(schedule, moment)
    changes: list[tuple[datetime, str | None]] = []
    while len(changes) < count:
        boundary = _next_boundary(schedule, moment)
        if boundary is None:
            break
        moment = boundary
        person = on_call(schedule, moment)
        # A boundary need not change anyone: an override for whoever is on anyway, or a
        # rotation listing the same person twice in a row.
        if person != current:
            changes.append((moment, person))
            current = person
    return changes


def _next_boundary(schedule: Schedule, moment: datetime) -> datetime | None:
    """The first instant after `moment` at which an override or a visible shift begins or ends;
    None when there is none: the person on call stays the same for ever."""
    candidates = [
        edge
        for override in schedule.overrides
        for edge in (_utc(override.starts_at), _utc(override.ends_at))
        if edge > moment
    ]
    for layer in reversed(schedule.layers):
        shift = shift_at(layer, schedule.timezone, moment)
        if shift is None:  # starts later, and from then on hides every layer below it
            candidates.append(_first_handoff(layer, schedule.timezone)[1])
            continue
        if len(set(layer.participants)) > 1:
            candidates.append(shift[2])
        # Layers never end, so the ones below this one are hidden from now on; skipping their
        # handoffs keeps a fast rotation under a slow one from costing a step per hidden shift.
        break
    return min(candidates, default=None)


def _override_at(overrides: Iterable[Override], at: datetime) -> Override | None:
    covering = [
        (_utc(override.starts_at), position, override)
        for position, override in enumerate(overrides)
        if _utc(override.starts_at) <= at < _utc(override.ends_at)
    ]
    return max(covering, key=lambda entry: entry[:2])[2] if covering else None


def _first_handoff(layer: Layer, zone: ZoneInfo) -> tuple[date, datetime]:
    """The local date and UTC instant of the layer's first handoff (see the module docstring)."""
    start = _utc(layer.starts_at)
    day = start.astimezone(zone).date()
    handoff = _wall_clock(day, layer.handoff_time, zone)
    while handoff < start:  # once, but for zones whose clocks jump across midnight
        day += timedelta(days=1)
        handoff = _wall_clock(day, layer.handoff_time, zone)
    return day, handoff


def _handoff_day(clock: time, zone: ZoneInfo, at: datetime) -> date:
    """The local date of the last daily `clock` handoff at or before `at`."""
    day = at.astimezone(zone).date()
    # Normally the loops below run at most once (before today's handoff: yesterday's). They are
    # loops because a zone whose clocks fall back across midnight shows one date twice. A date a
    # zone skipped whole (Pacific/Apia, 2011-12-30) still counts as a day of the rotation; its
    # shift is what is left of it, nothing for a 00:00 handoff.
    while _wall_clock(day, clock, zone) > at:
        day -= timedelta(days=1)
    while _wall_clock(day + timedelta(days=1), clock, zone) <= at:
        day += timedelta(days=1)
    return day


def _wall_clock(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `zone`'s clocks show `clock` on `day`: the first of the two on a
    fall-back day, the end of the gap when a spring-forward skips it."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first of two readings
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # Skipped: fold=0 read `clock` with the offset from before the jump, which lands after it;
    # fold=1 with the one after the jump, which lands before it. The jump lies between.
    before = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition(zone, before, first)


def _transition(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The instant in (before, after] at which `zone`'s UTC offset changes from before's.
    zoneinfo does not expose its transitions; the tz database puts them on whole seconds."""
    offset = before.astimezone(zone).utcoffset()
    low, high = math.floor(before.timestamp()), math.ceil(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _utc(value: datetime) -> datetime:
    _require_aware(value, "a datetime")
    return value.astimezone(UTC)


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be aware (have a time zone)")


# --- the JSON body ------------------------------------------------------------------------------


def parse_schedule(data: Mapping[str, Any]) -> Schedule:
    """The schedule a JSON body describes:
    {name, timezone, layers: [{participants, rotation, handoff_time, starts_at}],
     overrides: [{person_id, from, to}]} (overrides optional; datetimes ISO 8601 with an offset).
    ScheduleError, naming the field, for anything unusable."""
    fields = _object(data, "schedule")
    name = _text(_required(fields, "name", ""), "name", MAX_NAME)
    zone = _zone(_required(fields, "timezone", ""))
    # No layers is a schedule nobody is on (but for its overrides): the firm's default is
    # shipped that way until someone sets it up.
    layers = _array(_required(fields, "layers", ""), "layers")
    overrides = _array(fields.get("overrides", []), "overrides")
    return Schedule(
        timezone=zone,
        layers=tuple(_layer(item, f"layers.{index}") for index, item in enumerate(layers)),
        overrides=tuple(
            _override(item, f"overrides.{index}") for index, item in enumerate(overrides)
        ),
        name=name,
    )


def _layer(data: object, where: str) -> Layer:
    fields = _object(data, where)
    participants = _array(_required(fields, "participants", where), f"{where}.participants")
    if not 1 <= len(participants) <= MAX_PARTICIPANTS:
        raise ScheduleError(
            f"{where}.participants", f"must list between 1 and {MAX_PARTICIPANTS} people"
        )
    return Layer(
        participants=tuple(
            _text(person, f"{where}.participants.{index}", MAX_PERSON_ID)
            for index, person in enumerate(participants)
        ),
        rotation=_rotation(_required(fields, "rotation", where), f"{where}.rotation"),
        handoff_time=_handoff_time(
            _required(fields, "handoff_time", where), f"{where}.handoff_time"
        ),
        starts_at=_instant(_required(fields, "starts_at", where), f"{where}.starts_at"),
    )


def _override(data: object, where: str) -> Override:
    fields = _object(data, where)
    person_id = _text(_required(fields, "person_id", where), f"{where}.person_id", MAX_PERSON_ID)
    starts_at = _instant(_required(fields, "from", where), f"{where}.from")
    ends_at = _instant(_required(fields, "to", where), f"{where}.to")
    if _utc(ends_at) <= _utc(starts_at):  # by instant, whatever zones they were given in
        raise ScheduleError(f"{where}.to", "must be after from")
    return Override(person_id=person_id, starts_at=starts_at, ends_at=ends_at)


def _rotation(value: object, where: str) -> Rotation:
    if value == "daily" or value == "weekly":
        return value
    if isinstance(value, Mapping) and "hours" in value:
        hours = value["hours"]
        # bool is an int to Python, but `true` hours is a mistake, not 1.
        if (
            not isinstance(hours, int)
            or isinstance(hours, bool)
            or not MIN_ROTATION_HOURS <= hours <= MAX_ROTATION_HOURS
        ):
            raise ScheduleError(
                f"{where}.hours",
                f"must be a whole number between {MIN_ROTATION_HOURS} and {MAX_ROTATION_HOURS}",
            )
        return timedelta(hours=hours)
    raise ScheduleError(where, 'must be "daily", "weekly" or {"hours": N}')


def _handoff_time(value: object, where: str) -> time:
    match = HANDOFF_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ScheduleError(where, 'must be a 24-hour time "HH:MM", such as "09:00"')
    return time(int(match[1]), int(match[2]))


def _instant(value: object, where: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ScheduleError(where, "must be an ISO 8601 date and time") from None
    if not isinstance(value, datetime):
        raise ScheduleError(where, "must be an ISO 8601 date and time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(where, "must include a UTC offset, such as Z or +01:00")
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ScheduleError(where, f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def _zone(value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value or len(value) > MAX_TIMEZONE:
        raise ScheduleError("timezone", "must be an IANA time zone name, such as Europe/London")
    try:
        return ZoneInfo(value)
    # ValueError: not a key at all ("../x"); OSError: a zone file that cannot be read.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError("timezone", f"is not a known IANA time zone: {value!r}") from None


def _text(value: object, where: str, longest: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError(where, "must be a non-empty string")
    if len(value) > longest:
        raise ScheduleError(where, f"must be at most {longest} characters")
    return value


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScheduleError(where, "must be an object")
    return value


def _array(value: object, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ScheduleError(where, "must be an array")
    return list(value)


def _required(fields: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in fields or fields[key] is None:
        raise ScheduleError(f"{where}.{key}" if where else key, "is required")
    return fields[key]
