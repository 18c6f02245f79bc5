"""On-call schedules: who is on call when, through DST changes, layers and overrides.

Every expected value is written out by hand, in UTC ("Z"), with the local reading alongside.
The DST changes used: Europe/London springs forward on 2027-03-28 at 01:00 UTC (01:00 GMT ->
02:00 BST, so 01:00-02:00 local never happens) and falls back on 2027-10-31 at 01:00 UTC (02:00
BST -> 01:00 GMT, so 01:00-02:00 local happens twice); America/New_York springs forward on
2027-03-14 at 07:00 UTC (02:00 EST -> 03:00 EDT) and falls back on 2027-11-07 at 06:00 UTC
(02:00 EDT -> 01:00 EST)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.notify.oncall import (
    Layer,
    Override,
    Rotation,
    Schedule,
    ScheduleError,
    next_handoffs,
    on_call,
    parse_schedule,
    shift_at,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
TRIO = ("ann", "bob", "cat")


def utc(text: str) -> datetime:
    """'2027-03-28T07:59' -> that moment in UTC."""
    return datetime.fromisoformat(f"{text}+00:00")


def layer(
    starts_at: str,
    *,
    clock: str = "09:00",
    rotation: Rotation = "daily",
    people: tuple[str, ...] = TRIO,
) -> Layer:
    hours, minutes = clock.split(":")
    return Layer(
        participants=people,
        rotation=rotation,
        handoff_time=time(int(hours), int(minutes)),
        starts_at=datetime.fromisoformat(starts_at),
    )


def schedule(
    *layers: Layer, zone: ZoneInfo = LONDON, overrides: tuple[Override, ...] = ()
) -> Schedule:
    return Schedule(timezone=zone, layers=layers, overrides=overrides)


def cover(person: str, start: str, end: str) -> Override:
    return Override(person_id=person, starts_at=utc(start), ends_at=utc(end))


# --- daily rotation across DST --------------------------------------------------------------

# Each layer starts at 09:00 local on the day before the change: ann that day, bob on the day of
# the change, cat the day after.
LONDON_SPRING = "2027-03-27T09:00+00:00"
LONDON_FALL = "2027-10-30T09:00+01:00"
NEW_YORK_SPRING = "2027-03-13T09:00-05:00"
NEW_YORK_FALL = "2027-11-06T09:00-04:00"


@pytest.mark.parametrize(
    ("zone", "starts_at", "at", "expected"),
    [
        (LONDON, LONDON_SPRING, "2027-03-27T08:59", None),  # 08:59 GMT, before the start
        (LONDON, LONDON_SPRING, "2027-03-27T09:00", "ann"),  # 09:00 GMT
        (LONDON, LONDON_SPRING, "2027-03-28T07:59", "ann"),  # 08:59 BST
        (LONDON, LONDON_SPRING, "2027-03-28T08:00", "bob"),  # 09:00 BST
        (LONDON, LONDON_SPRING, "2027-03-28T08:59", "bob"),  # 09:59 BST, 08:59 UTC
        (LONDON, LONDON_SPRING, "2027-03-29T07:59", "bob"),  # 08:59 BST
        (LONDON, LONDON_SPRING, "2027-03-29T08:00", "cat"),  # 09:00 BST
        (LONDON, LONDON_FALL, "2027-10-30T07:59", None),  # 08:59 BST, before the start
        (LONDON, LONDON_FALL, "2027-10-30T08:00", "ann"),  # 09:00 BST
        (LONDON, LONDON_FALL, "2027-10-31T08:59", "ann"),  # 08:59 GMT
        (LONDON, LONDON_FALL, "2027-10-31T09:00", "bob"),  # 09:00 GMT
        (LONDON, LONDON_FALL, "2027-11-01T08:59", "bob"),
        (LONDON, LONDON_FALL, "2027-11-01T09:00", "cat"),
        (NEW_YORK, NEW_YORK_SPRING, "2027-03-13T13:59", None),  # 08:59 EST
        (NEW_YORK, NEW_YORK_SPRING, "2027-03-13T14:00", "ann"),  # 09:00 EST
        (NEW_YORK, NEW_YORK_SPRING, "2027-03-14T12:59", "ann"),  # 08:59 EDT
        (NEW_YORK, NEW_YORK_SPRING, "2027-03-14T13:00", "bob"),  # 09:00 EDT
        (NEW_YORK, NEW_YORK_SPRING, "2027-03-15T12:59", "bob"),
        (NEW_YORK, NEW_YORK_SPRING, "2027-03-15T13:00", "cat"),
        (NEW_YORK, NEW_YORK_FALL, "2027-11-06T12:59", None),  # 08:59 EDT
        (NEW_YORK, NEW_YORK_FALL, "2027-11-06T13:00", "ann"),  # 09:00 EDT
        (NEW_YORK, NEW_YORK_FALL, "2027-11-07T13:59", "ann"),  # 08:59 EST
        (NEW_YORK, NEW_YORK_FALL, "2027-11-07T14:00", "bob"),  # 09:00 EST
        (NEW_YORK, NEW_YORK_FALL, "2027-11-08T13:59", "bob"),
        (NEW_YORK, NEW_YORK_FALL, "2027-11-08T14:00", "cat"),
    ],
)
def test_a_daily_handoff_stays_at_local_time_across_dst(
    zone: ZoneInfo, starts_at: str, at: str, expected: str | None
) -> None:
    assert on_call(schedule(layer(starts_at), zone=zone), utc(at)) == expected


@pytest.mark.parametrize(
    ("zone", "starts_at", "expected", "hours"),
    [
        (LONDON, LONDON_SPRING, ("ann", "2027-03-27T09:00", "2027-03-28T08:00"), 23),
        (LONDON, LONDON_SPRING, ("bob", "2027-03-28T08:00", "2027-03-29T08:00"), 24),
        (LONDON, LONDON_FALL, ("ann", "2027-10-30T08:00", "2027-10-31T09:00"), 25),
        (LONDON, LONDON_FALL, ("bob", "2027-10-31T09:00", "2027-11-01T09:00"), 24),
        (NEW_YORK, NEW_YORK_SPRING, ("ann", "2027-03-13T14:00", "2027-03-14T13:00"), 23),
        (NEW_YORK, NEW_YORK_SPRING, ("bob", "2027-03-14T13:00", "2027-03-15T13:00"), 24),
        (NEW_YORK, NEW_YORK_FALL, ("ann", "2027-11-06T13:00", "2027-11-07T14:00"), 25),
        (NEW_YORK, NEW_YORK_FALL, ("bob", "2027-11-07T14:00", "2027-11-08T14:00"), 24),
    ],
)
def test_shifts_across_dst_nights_last_23_or_25_hours(
    zone: ZoneInfo, starts_at: str, expected: tuple[str, str, str], hours: int
) -> None:
    person, start, end = expected
    shift = (person, utc(start), utc(end))
    # The same shift from its first instant to its last.
    assert shift_at(layer(starts_at), zone, utc(start)) == shift
    assert shift_at(layer(starts_at), zone, utc(end) - timedelta(seconds=1)) == shift
    assert utc(end) - utc(start) == timedelta(hours=hours)


# --- handoff times that happen twice, or never ----------------------------------------------


@pytest.mark.parametrize(
    ("zone", "clock", "starts_at", "at", "expected"),
    [
        # London, 01:30 on 2027-03-28 is skipped: bob's shift starts at the jump, 02:00 BST.
        (LONDON, "01:30", "2027-03-27T01:30+00:00", "2027-03-28T00:59",
         ("ann", "2027-03-27T01:30", "2027-03-28T01:00")),
        (LONDON, "01:30", "2027-03-27T01:30+00:00", "2027-03-28T01:00",
         ("bob", "2027-03-28T01:00", "2027-03-29T00:30")),
        # 02:30 BST: reading 01:30 with fold=0 through UTC would have made the handoff 02:30 BST.
        (LONDON, "01:30", "2027-03-27T01:30+00:00", "2027-03-28T01:29",
         ("bob", "2027-03-28T01:00", "2027-03-29T00:30")),
        # London's gap is 01:00-02:00, so 02:30 on 2027-03-28 exists: 02:30 BST.
        (LONDON, "02:30", "2027-03-27T02:30+00:00", "2027-03-28T01:30",
         ("bob", "2027-03-28T01:30", "2027-03-29T01:30")),
        (LONDON, "02:30", "2027-03-27T02:30+00:00", "2027-03-28T01:29",
         ("ann", "2027-03-27T02:30", "2027-03-28T01:30")),
        # New York, 02:30 on 2027-03-14 is skipped: bob's shift starts at the jump, 03:00 EDT.
        (NEW_YORK, "02:30", "2027-03-13T02:30-05:00", "2027-03-14T06:59",
         ("ann", "2027-03-13T07:30", "2027-03-14T07:00")),
        (NEW_YORK, "02:30", "2027-03-13T02:30-05:00", "2027-03-14T07:00",
         ("bob", "2027-03-14T07:00", "2027-03-15T06:30")),
        (NEW_YORK, "02:30", "2027-03-13T02:30-05:00", "2027-03-14T07:29",  # not 03:30 EDT
         ("bob", "2027-03-14T07:00", "2027-03-15T06:30")),
        # London, 01:30 on 2027-10-31 happens twice: bob's shift starts at the first, 01:30 BST.
        (LONDON, "01:30", "2027-10-30T01:30+01:00", "2027-10-31T00:29",
         ("ann", "2027-10-30T00:30", "2027-10-31T00:30")),
        (LONDON, "01:30", "2027-10-30T01:30+01:00", "2027-10-31T00:30",
         ("bob", "2027-10-31T00:30", "2027-11-01T01:30")),
        (LONDON, "01:30", "2027-10-30T01:30+01:00", "2027-10-31T01:30",  # 01:30 GMT, again
         ("bob", "2027-10-31T00:30", "2027-11-01T01:30")),
        # New York, 01:30 on 2027-11-07 happens twice: the first is 01:30 EDT.
        (NEW_YORK, "01:30", "2027-11-06T01:30-04:00", "2027-11-07T05:30",
         ("bob", "2027-11-07T05:30", "2027-11-08T06:30")),
        (NEW_YORK, "01:30", "2027-11-06T01:30-04:00", "2027-11-07T06:30",  # 01:30 EST
         ("bob", "2027-11-07T05:30", "2027-11-08T06:30")),
    ],
)  # fmt: skip
def test_a_skipped_handoff_time_is_the_jump_and_a_repeated_one_the_first_occurrence(
    zone: ZoneInfo, clock: str, starts_at: str, at: str, expected: tuple[str, str, str]
) -> None:
    person, start, end = expected
    assert shift_at(layer(starts_at, clock=clock), zone, utc(at)) == (person, utc(start), utc(end))


def test_a_layer_that_starts_in_a_gap_starts_at_the_jump() -> None:
    # starts_at 02:30 EST on 2027-03-14 is 03:30 EDT, after the jump at 03:00 EDT (07:00Z): the
    # first 02:30 handoff at or after it is the next day's, 02:30 EDT (06:30Z).
    starts_in_gap = layer("2027-03-14T02:30-05:00", clock="02:30")
    assert shift_at(starts_in_gap, NEW_YORK, utc("2027-03-15T06:29")) is None
    assert shift_at(starts_in_gap, NEW_YORK, utc("2027-03-15T06:30")) == (
        "ann",
        utc("2027-03-15T06:30"),
        utc("2027-03-16T06:30"),
    )


# --- where a layer starts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starts_at", "at", "expected"),
    [
        ("2027-03-24T06:00+00:00", "2027-03-24T08:59", None),  # the same day's 09:00 is first
        ("2027-03-24T06:00+00:00", "2027-03-24T09:00", "ann"),
        ("2027-03-24T10:00+00:00", "2027-03-24T10:00", None),  # after 09:00: the next day's
        ("2027-03-24T10:00+00:00", "2027-03-25T08:59", None),
        ("2027-03-24T10:00+00:00", "2027-03-25T09:00", "ann"),
        ("2027-03-24T10:00+00:00", "2027-03-26T09:00", "bob"),
        ("2027-03-24T09:00+00:00", "2027-03-24T09:00", "ann"),  # exactly at a handoff
    ],
)
def test_a_layer_starts_at_the_first_handoff_at_or_after_starts_at(
    starts_at: str, at: str, expected: str | None
) -> None:
    assert on_call(schedule(layer(starts_at)), utc(at)) == expected


# --- weekly and N-hour rotations ---------------------------------------------------------------

WEEKLY_MONDAYS = layer("2027-03-22T09:00+00:00", rotation="weekly", people=("ann", "bob"))
WEEKLY_THURSDAYS = layer("2027-03-24T10:00+00:00", rotation="weekly", people=("ann", "bob"))


@pytest.mark.parametrize(
    ("weekly", "at", "expected"),
    [
        # 167 hours: the week takes in London's spring-forward night.
        (WEEKLY_MONDAYS, "2027-03-22T09:00", ("ann", "2027-03-22T09:00", "2027-03-29T08:00")),
        (WEEKLY_MONDAYS, "2027-03-29T07:59", ("ann", "2027-03-22T09:00", "2027-03-29T08:00")),
        (WEEKLY_MONDAYS, "2027-03-29T08:00", ("bob", "2027-03-29T08:00", "2027-04-05T08:00")),
        (WEEKLY_MONDAYS, "2027-04-05T08:00", ("ann", "2027-04-05T08:00", "2027-04-12T08:00")),
        # starts_at Wednesday 10:00 GMT: the first handoff is Thursday 09:00, and so every week.
        (WEEKLY_THURSDAYS, "2027-03-25T09:00", ("ann", "2027-03-25T09:00", "2027-04-01T08:00")),
        (WEEKLY_THURSDAYS, "2027-04-01T08:00", ("bob", "2027-04-01T08:00", "2027-04-08T08:00")),
        (WEEKLY_MONDAYS, "2027-03-22T08:59", None),
        (WEEKLY_THURSDAYS, "2027-03-25T08:59", None),
    ],
)  # fmt: skip
def test_a_weekly_rotation_hands_off_every_seventh_day_at_local_time(
    weekly: Layer, at: str, expected: tuple[str, str, str] | None
) -> None:
    shift = shift_at(weekly, LONDON, utc(at))
    if expected is None:
        assert shift is None
    else:
        person, start, end = expected
        assert shift == (person, utc(start), utc(end))


HOURS_12_WINTER = layer(
    "2027-03-27T09:00+00:00", rotation=timedelta(hours=12), people=("ann", "bob")
)
HOURS_12_SUMMER = layer(
    "2027-10-30T09:00+01:00", rotation=timedelta(hours=12), people=("ann", "bob")
)


@pytest.mark.parametrize(
    ("twelve_hours", "at", "expected"),
    [
        # 21:00 GMT to 10:00 BST: twelve hours across the spring-forward night, not eleven.
        (HOURS_12_WINTER, "2027-03-27T21:00", ("bob", "2027-03-27T21:00", "2027-03-28T09:00")),
        (HOURS_12_WINTER, "2027-03-28T08:59", ("bob", "2027-03-27T21:00", "2027-03-28T09:00")),
        # From here on the handoffs are at 10:00 and 22:00 BST.
        (HOURS_12_WINTER, "2027-03-28T09:00", ("ann", "2027-03-28T09:00", "2027-03-28T21:00")),
        # 21:00 BST to 08:00 GMT: twelve hours across the fall-back night, not thirteen.
        (HOURS_12_SUMMER, "2027-10-31T01:30", ("bob", "2027-10-30T20:00", "2027-10-31T08:00")),
        (HOURS_12_SUMMER, "2027-10-31T08:00", ("ann", "2027-10-31T08:00", "2027-10-31T20:00")),
        (HOURS_12_SUMMER, "2027-10-30T07:59", None),
    ],
)  # fmt: skip
def test_an_hours_rotation_counts_elapsed_time_across_dst(
    twelve_hours: Layer, at: str, expected: tuple[str, str, str] | None
) -> None:
    shift = shift_at(twelve_hours, LONDON, utc(at))
    if expected is None:
        assert shift is None
    else:
        person, start, end = expected
        assert shift == (person, utc(start), utc(end))


# --- years after the start -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rotating", "at", "expected"),
    [
        # 2027-03-27 to 2030-03-27 is 1096 days (2028 is a leap year); day 1095 is ann's (1095 is
        # a multiple of 3), day 1096 bob's. 2030-03-27 is still GMT (BST from 2030-03-31).
        (layer(LONDON_SPRING), "2030-03-27T08:59", "ann"),
        (layer(LONDON_SPRING), "2030-03-27T09:00", "bob"),
        # 2030-07-01 is day 1192 (1191 = 3 x 397): bob's from 09:00 BST.
        (layer(LONDON_SPRING), "2030-07-01T07:59", "ann"),
        (layer(LONDON_SPRING), "2030-07-01T08:00", "bob"),
        # 1096 days of 12-hour shifts is 2192 shifts (2192 = 3 x 730 + 2): cat's.
        (layer(LONDON_SPRING, rotation=timedelta(hours=12)), "2030-03-27T09:00", "cat"),
        (layer(LONDON_SPRING, rotation=timedelta(hours=12)), "2030-03-27T08:59", "bob"),
        # 2027-03-22 to 2030-03-25 (both Mondays) is 1099 days, 157 weeks: an odd week, bob's.
        (WEEKLY_MONDAYS, "2030-03-25T08:59", "ann"),
        (WEEKLY_MONDAYS, "2030-03-25T09:00", "bob"),
    ],
)
def test_the_shift_years_after_the_start(rotating: Layer, at: str, expected: str) -> None:
    assert on_call(schedule(rotating), utc(at)) == expected


# --- overrides ---------------------------------------------------------------------------------

# Under the layer (LONDON_SPRING): bob from 2027-03-31 09:00 BST, cat from 04-01, ann from 04-02.
# Listed inner first: the later start wins, not the place in the list.
NESTED = (
    cover("yan", "2027-04-02T00:00", "2027-04-02T06:00"),
    cover("zed", "2027-04-01T00:00", "2027-04-03T00:00"),
)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2027-03-31T23:59:59", "bob"),
        ("2027-04-01T00:00", "zed"),  # the start is included
        ("2027-04-01T12:00", "zed"),
        ("2027-04-02T00:00", "yan"),  # inside zed's: yan's starts later
        ("2027-04-02T05:59:59", "yan"),
        ("2027-04-02T06:00", "zed"),  # yan's end is excluded
        ("2027-04-02T23:59:59", "zed"),
        ("2027-04-03T00:00", "ann"),  # zed's end is excluded
    ],
)
def test_overrides_win_and_the_latest_starting_one_wins_among_them(at: str, expected: str) -> None:
    assert on_call(schedule(layer(LONDON_SPRING), overrides=NESTED), utc(at)) == expected


def test_an_override_covers_a_time_no_layer_does() -> None:
    early = schedule(
        layer(LONDON_SPRING), overrides=(cover("zed", "2027-03-26T00:00", "2027-03-26T12:00"),)
    )
    assert on_call(early, utc("2027-03-26T06:00")) == "zed"
    assert on_call(early, utc("2027-03-26T12:00")) is None


def test_of_overrides_starting_together_the_last_listed_wins() -> None:
    both = (
        cover("yan", "2027-04-01T00:00", "2027-04-02T00:00"),
        cover("zed", "2027-04-01T00:00", "2027-04-01T06:00"),
    )
    assert on_call(schedule(layer(LONDON_SPRING), overrides=both), utc("2027-04-01T01:00")) == "zed"


# --- layers ------------------------------------------------------------------------------------

# The top layer's starts_at is 2027-04-01 12:00 BST, so it starts at 09:00 BST the next day.
TOP = layer("2027-04-01T12:00+01:00", rotation="weekly", people=("xia", "yu"))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2027-03-27T08:00", None),  # neither layer has started
        ("2027-04-01T12:00", "cat"),  # the bottom layer's cat (04-01): the top has not started
        ("2027-04-02T07:59", "cat"),  # the top's starts_at has passed, its first handoff not
        ("2027-04-02T08:00", "xia"),
        ("2027-04-09T07:59", "xia"),
        ("2027-04-09T08:00", "yu"),
    ],
)
def test_the_top_layer_wins_where_it_has_someone(at: str, expected: str | None) -> None:
    assert on_call(schedule(layer(LONDON_SPRING), TOP), utc(at)) == expected


def test_layers_stack_in_the_order_listed() -> None:
    # Listed the other way round, the daily layer is on top: ann's day (04-02).
    assert on_call(schedule(TOP, layer(LONDON_SPRING)), utc("2027-04-02T08:00")) == "ann"


# --- the next handoffs -------------------------------------------------------------------------


def test_next_handoffs_lists_each_change_of_person_in_order() -> None:
    overrides = (
        cover("zed", "2027-03-28T12:00", "2027-03-28T14:00"),
        cover("bob", "2027-03-29T00:00", "2027-03-29T02:00"),  # bob is on then anyway
    )
    rota = schedule(layer(LONDON_SPRING), overrides=overrides)
    assert next_handoffs(rota, utc("2027-03-27T00:00"), 6) == [
        (utc("2027-03-27T09:00"), "ann"),
        (utc("2027-03-28T08:00"), "bob"),
        (utc("2027-03-28T12:00"), "zed"),
        (utc("2027-03-28T14:00"), "bob"),
        (utc("2027-03-29T08:00"), "cat"),
        (utc("2027-03-30T08:00"), "ann"),
    ]
    # Strictly after: a handoff at `after` itself is not next.
    assert next_handoffs(rota, utc("2027-03-28T08:00"), 1) == [(utc("2027-03-28T12:00"), "zed")]
    assert next_handoffs(rota, utc("2027-03-28T08:00"), 0) == []


def test_next_handoffs_stops_when_the_schedule_stops_changing() -> None:
    alone = schedule(
        layer(LONDON_SPRING, people=("ann",)),
        overrides=(cover("zed", "2027-03-28T12:00", "2027-03-28T14:00"),),
    )
    assert next_handoffs(alone, utc("2027-03-27T00:00"), 5) == [
        (utc("2027-03-27T09:00"), "ann"),
        (utc("2027-03-28T12:00"), "zed"),
        (utc("2027-03-28T14:00"), "ann"),
    ]
    only_cover = schedule(overrides=(cover("zed", "2027-03-28T12:00", "2027-03-28T14:00"),))
    assert next_handoffs(only_cover, utc("2027-03-27T00:00"), 5) == [
        (utc("2027-03-28T12:00"), "zed"),
        (utc("2027-03-28T14:00"), None),
    ]


def test_next_handoffs_skips_the_shifts_of_a_hidden_layer() -> None:
    hourly = layer("2027-03-27T00:00+00:00", clock="00:00", rotation=timedelta(hours=1))
    rota = schedule(hourly, layer(LONDON_SPRING, people=("xia", "yu")))
    assert next_handoffs(rota, utc("2027-03-27T08:30"), 3) == [
        (utc("2027-03-27T09:00"), "xia"),
        (utc("2027-03-28T08:00"), "yu"),
        (utc("2027-03-29T08:00"), "xia"),
    ]


# --- parsing the JSON body ---------------------------------------------------------------------


def body() -> dict[str, Any]:
    return {
        "name": "Platform primary",
        "timezone": "Europe/London",
        "layers": [
            {
                "participants": ["ann", "bob", "cat"],
                "rotation": "daily",
                "handoff_time": "09:00",
                "starts_at": "2027-03-27T09:00:00Z",
            },
            {
                "participants": ["xia"],
                "rotation": {"hours": 12},
                "handoff_time": "21:30",
                "starts_at": "2027-04-01T00:00:00+01:00",
            },
        ],
        "overrides": [
            {"person_id": "zed", "from": "2027-04-01T00:00:00Z", "to": "2027-04-03T00:00:00Z"},
            {"person_id": "yan", "from": "2027-04-02T00:00:00Z", "to": "2027-04-02T06:00:00Z"},
        ],
    }


def test_parse_schedule_reads_the_body() -> None:
    assert parse_schedule(body()) == Schedule(
        timezone=LONDON,
        layers=(
            Layer(("ann", "bob", "cat"), "daily", time(9, 0), utc("2027-03-27T09:00")),
            Layer(("xia",), timedelta(hours=12), time(21, 30), utc("2027-03-31T23:00")),
        ),
        overrides=(
            Override("zed", utc("2027-04-01T00:00"), utc("2027-04-03T00:00")),
            Override("yan", utc("2027-04-02T00:00"), utc("2027-04-02T06:00")),
        ),
        name="Platform primary",
    )
    without_overrides = body()
    del without_overrides["overrides"]
    assert parse_schedule(without_overrides).overrides == ()
    weekly = body()
    weekly["layers"][0]["rotation"] = "weekly"
    assert parse_schedule(weekly).layers[0].rotation == "weekly"


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("name",), "", "name"),
        (("name",), DELETE, "name"),
        (("timezone",), "Mars/Olympus", "timezone"),
        (("timezone",), "../etc/passwd", "timezone"),
        (("timezone",), DELETE, "timezone"),
        (("timezone",), 0, "timezone"),
        (("layers",), "daily", "layers"),
        (("layers", 0), "ann", "layers.0"),
        (("layers", 0, "participants"), [], "layers.0.participants"),
        (("layers", 0, "participants"), [f"p{n}" for n in range(51)], "layers.0.participants"),
        (("layers", 0, "participants"), "ann", "layers.0.participants"),
        (("layers", 0, "participants", 1), "", "layers.0.participants.1"),
        (("layers", 0, "participants", 1), 7, "layers.0.participants.1"),
        (("layers", 0, "rotation"), "monthly", "layers.0.rotation"),
        (("layers", 0, "rotation"), {"days": 2}, "layers.0.rotation"),
        (("layers", 0, "rotation"), DELETE, "layers.0.rotation"),
        (("layers", 1, "rotation", "hours"), 0, "layers.1.rotation.hours"),
        (("layers", 1, "rotation", "hours"), 24 * 28 + 1, "layers.1.rotation.hours"),
        (("layers", 1, "rotation", "hours"), "12", "layers.1.rotation.hours"),
        (("layers", 1, "rotation", "hours"), 12.5, "layers.1.rotation.hours"),
        (("layers", 1, "rotation", "hours"), True, "layers.1.rotation.hours"),
        (("layers", 0, "handoff_time"), "9:00", "layers.0.handoff_time"),
        (("layers", 0, "handoff_time"), "24:00", "layers.0.handoff_time"),
        (("layers", 0, "handoff_time"), "09:60", "layers.0.handoff_time"),
        (("layers", 0, "handoff_time"), "09:00:00", "layers.0.handoff_time"),
        (("layers", 0, "handoff_time"), 900, "layers.0.handoff_time"),
        (("layers", 1, "handoff_time"), DELETE, "layers.1.handoff_time"),
        (("layers", 0, "starts_at"), "2027-03-27T09:00:00", "layers.0.starts_at"),
        (("layers", 0, "starts_at"), "next Monday", "layers.0.starts_at"),
        (("layers", 0, "starts_at"), "3000-01-01T00:00:00Z", "layers.0.starts_at"),
        (("layers", 0, "starts_at"), 1806138000, "layers.0.starts_at"),
        (("overrides",), {}, "overrides"),
        (("overrides", 0), None, "overrides.0"),
        (("overrides", 0, "person_id"), DELETE, "overrides.0.person_id"),
        (("overrides", 0, "from"), "2027-04-01T00:00:00", "overrides.0.from"),
        (("overrides", 1, "to"), "2027-04-02T00:00:00Z", "overrides.1.to"),  # equal to from
        (("overrides", 1, "to"), "2027-04-01T23:00:00Z", "overrides.1.to"),  # before from
        (("overrides", 1, "to"), "2027-04-02T00:30:00+01:00", "overrides.1.to"),  # 23:30Z
    ],
)
def test_parse_schedule_names_the_field_it_refuses(
    path: tuple[str | int, ...], value: object, field: str
) -> None:
    data = copy.deepcopy(body())
    parent: Any = data
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(ScheduleError) as refused:
        parse_schedule(data)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field} ")


def test_parse_schedule_refuses_a_body_that_is_not_an_object() -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule([])  # type: ignore[arg-type]
    assert refused.value.field == "schedule"


# --- built in code -----------------------------------------------------------------------------


def test_layers_and_overrides_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="at least one participant"):
        layer(LONDON_SPRING, people=())
    with pytest.raises(ValueError, match="aware"):
        layer("2027-03-27T09:00")
    with pytest.raises(ValueError, match="positive"):
        layer(LONDON_SPRING, rotation=timedelta(0))
    with pytest.raises(ValueError, match="end after it starts"):
        cover("zed", "2027-04-02T00:00", "2027-04-01T00:00")
    with pytest.raises(ValueError, match="aware"):
        on_call(schedule(layer(LONDON_SPRING)), datetime(2027, 4, 1, 12))


def test_a_moment_may_be_given_in_any_zone_and_either_fold() -> None:
    # Handoffs at 01:30 from 2027-10-30: bob's shift starts at the first 01:30 on 10-31 (BST).
    fold_night = layer("2027-10-30T01:30+01:00", clock="01:30")
    bobs = ("bob", utc("2027-10-31T00:30"), utc("2027-11-01T01:30"))
    anns = ("ann", utc("2027-10-30T00:30"), utc("2027-10-31T00:30"))
    assert shift_at(fold_night, LONDON, datetime(2027, 10, 31, 1, 15, tzinfo=LONDON)) == anns
    assert shift_at(fold_night, LONDON, datetime(2027, 10, 31, 1, 30, tzinfo=LONDON)) == bobs
    assert (
        shift_at(fold_night, LONDON, datetime(2027, 10, 31, 1, 15, fold=1, tzinfo=LONDON)) == bobs
    )
    assert shift_at(fold_night, LONDON, datetime(2027, 10, 31, 2, 30, tzinfo=NEW_YORK)) == bobs


def test_a_schedule_without_layers_has_only_its_overrides() -> None:
    schedule = parse_schedule(
        {
            "name": "Default",
            "timezone": "UTC",
            "layers": [],
            "overrides": [
                {
                    "person_id": "ann",
                    "from": "2027-01-01T00:00:00+00:00",
                    "to": "2027-01-02T00:00:00+00:00",
                }
            ],
        }
    )
    assert on_call(schedule, datetime(2027, 1, 1, 12, tzinfo=UTC)) == "ann"
    assert on_call(schedule, datetime(2027, 1, 2, 12, tzinfo=UTC)) is None
