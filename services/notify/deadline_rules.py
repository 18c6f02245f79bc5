"""The regulatory deadlines an incident's flags start, as one data table (issue 9, §5).

Pure: no I/O, no clock. `deadlines_for` turns a flag and the times it depends on into the
deadlines it starts, each with its legal source. docs/architecture.md prints the same table.

- `personal_data`: GDPR (EU) 2016/679 Art. 33(1), the supervisory authority within 72 hours
  of awareness.
- `nis2`: NIS2 Directive (EU) 2022/2555 Art. 23(4): early warning within 24 hours of awareness,
  incident notification within 72 hours, final report within one month of the notification.
- `dora`: DORA Regulation (EU) 2022/2554 Art. 19(4) and the RTS/ITS on reporting timelines:
  initial notification within 4 hours of classification as major and at most 24 hours after
  detection, intermediate report 72 hours after it, final report one month after that.
- `sec`: SEC Form 8-K Item 1.05: 4 business days after the materiality determination.

Choices made where the law leaves room:
- Each later report is due counted from the earlier one's due time (the latest the earlier one
  may be sent), so the chain holds even before anything has been sent.
- "One month" is a calendar month: the same day and time of the next month, clamped to the
  last day of a shorter month (31 January + one month = 28 or 29 February).
- SEC business days are Monday to Friday except US federal holidays (`holidays.US()`, observed
  days included), the SEC's own definition (17 CFR 240.0-3, Regulation S-T 232.11: days the
  Commission's office is open), rather than the NYSE calendar (which closes on Good Friday but
  not on Columbus or Veterans Day). The 8-K is due at the same clock time (UTC) on the fourth
  business day after the determination's date.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import holidays

Flag = Literal["personal_data", "nis2", "dora", "sec"]
FLAGS: tuple[Flag, ...] = ("personal_data", "nis2", "dora", "sec")


@dataclass(frozen=True)
class Times:
    """What a flag's clocks run from."""

    aware_at: datetime  # when the firm became aware (for sec: the materiality determination)
    detected_at: datetime  # when the incident was detected
    classified_at: datetime  # for dora: when it was classified as major


@dataclass(frozen=True)
class Rule:
    """One deadline of the table. `due` gets the times and the due times of the flag's
    earlier rules (by name), so a later report can count from an earlier one."""

    flag: Flag
    name: str  # unique across the table: what the API calls the deadline's `rule`
    source: str
    due: Callable[[Times, dict[str, datetime]], datetime]


@dataclass(frozen=True)
class Due:
    rule: str
    source: str
    due_at: datetime


def add_month(moment: datetime) -> datetime:
    """The same day and time next month, clamped to the end of a shorter month."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


_US_HOLIDAYS = holidays.US()  # years fill in lazily, as they are asked about


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _US_HOLIDAYS


def add_business_days(moment: datetime, days: int) -> datetime:
    """The same clock time on the `days`-th business day after `moment`'s date."""
    for_day = moment
    counted = 0
    while counted < days:
        for_day += timedelta(days=1)
        if is_business_day(for_day.date()):
            counted += 1
    return for_day


HOURS = timedelta(hours=1)

# THE table. Order matters within a flag: a rule may count from an earlier one's due time.
RULES: tuple[Rule, ...] = (
    Rule(
        "personal_data",
        "gdpr_supervisory_authority",
        "GDPR (EU) 2016/679 Art. 33(1): notify the supervisory authority within 72 hours of "
        "becoming aware",
        lambda t, _: t.aware_at + 72 * HOURS,
    ),
    Rule(
        "nis2",
        "nis2_early_warning",
        "NIS2 Directive (EU) 2022/2555 Art. 23(4)(a): early warning within 24 hours of becoming "
        "aware",
        lambda t, _: t.aware_at + 24 * HOURS,
    ),
    Rule(
        "nis2",
        "nis2_incident_notification",
        "NIS2 Directive (EU) 2022/2555 Art. 23(4)(b): incident notification within 72 hours of "
        "becoming aware",
        lambda t, _: t.aware_at + 72 * HOURS,
    ),
    Rule(
        "nis2",
        "nis2_final_report",
        "NIS2 Directive (EU) 2022/2555 Art. 23(4)(d): final report within one month after the "
        "incident notification",
        lambda _, before: add_month(before["nis2_incident_notification"]),
    ),
    Rule(
        "dora",
        "dora_initial_notification",
        "DORA Regulation (EU) 2022/2554 Art. 19(4)(a) and the RTS/ITS on reporting timelines: "
        "initial notification within 4 hours of classification as major, at most 24 hours "
        "after detection",
        lambda t, _: min(t.classified_at + 4 * HOURS, t.detected_at + 24 * HOURS),
    ),
    Rule(
        "dora",
        "dora_intermediate_report",
        "DORA Regulation (EU) 2022/2554 Art. 19(4)(b) and the RTS/ITS: intermediate report "
        "within 72 hours of the initial notification",
        lambda _, before: before["dora_initial_notification"] + 72 * HOURS,
    ),
    Rule(
        "dora",
        "dora_final_report",
        "DORA Regulation (EU) 2022/2554 Art. 19(4)(c) and the RTS/ITS: final report within one "
        "month of the intermediate report",
        lambda _, before: add_month(before["dora_intermediate_report"]),
    ),
    Rule(
        "sec",
        "sec_form_8k_item_1_05",
        "SEC Form 8-K Item 1.05 (General Instruction B.1): within 4 business days after the "
        "materiality determination",
        lambda t, _: add_business_days(t.aware_at, 4),
    ),
)


def deadlines_for(
    flag: str, *, aware_at: datetime, detected_at: datetime, classified_at: datetime
) -> list[Due]:
    """The deadlines `flag` starts, in the table's order. Raises ValueError for an unknown
    flag."""
    if flag not in FLAGS:
        raise ValueError(f"unknown flag {flag!r}: one of {', '.join(FLAGS)}")
    times = Times(aware_at=aware_at, detected_at=detected_at, classified_at=classified_at)
    found: dict[str, datetime] = {}
    result: list[Due] = []
    for rule in RULES:
        if rule.flag != flag:
            continue
        found[rule.name] = rule.due(times, found)
        result.append(Due(rule.name, rule.source, found[rule.name]))
    return result
