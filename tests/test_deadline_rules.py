"""The regulatory deadline table, by hand-worked dates: no clock, no processes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notify.deadline_rules import FLAGS, RULES, add_month, deadlines_for


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def due(
    flag: str, aware: str, detected: str | None = None, classified: str | None = None
) -> dict[str, datetime]:
    found = deadlines_for(
        flag,
        aware_at=at(aware),
        detected_at=at(detected or aware),
        classified_at=at(classified or aware),
    )
    return {deadline.rule: deadline.due_at for deadline in found}


def test_gdpr_is_72_hours_from_awareness() -> None:
    assert due("personal_data", "2026-03-02T10:00") == {
        "gdpr_supervisory_authority": at("2026-03-05T10:00")
    }


def test_nis2_final_report_is_a_calendar_month_clamped_to_the_month_end() -> None:
    assert due("nis2", "2026-01-28T09:00") == {
        "nis2_early_warning": at("2026-01-29T09:00"),
        "nis2_incident_notification": at("2026-01-31T09:00"),
        "nis2_final_report": at("2026-02-28T09:00"),  # 31 January + one month
    }


def test_dora_initial_is_4_hours_after_classification_when_detection_was_recent() -> None:
    assert due("dora", "2026-03-10T12:00", "2026-03-10T02:00", "2026-03-10T12:00") == {
        "dora_initial_notification": at("2026-03-10T16:00"),
        "dora_intermediate_report": at("2026-03-13T16:00"),
        "dora_final_report": at("2026-04-13T16:00"),
    }


def test_dora_initial_is_never_later_than_24_hours_after_detection() -> None:
    found = due("dora", "2026-03-10T12:00", "2026-03-09T13:00", "2026-03-10T12:00")
    assert found["dora_initial_notification"] == at("2026-03-10T13:00")
    assert found["dora_intermediate_report"] == at("2026-03-13T13:00")


@pytest.mark.parametrize(
    ("determined", "expected"),
    [
        ("2026-03-04T15:00", "2026-03-10T15:00"),  # Wednesday: over one weekend
        ("2026-03-06T15:00", "2026-03-12T15:00"),  # a Friday: Mon, Tue, Wed, Thu
        ("2026-03-07T15:00", "2026-03-12T15:00"),  # a Saturday counts from Monday
        ("2026-01-16T15:00", "2026-01-23T15:00"),  # Friday before Martin Luther King Jr. Day
        ("2026-11-24T15:00", "2026-12-01T15:00"),  # over Thanksgiving (Thursday 26 November)
        ("2026-07-02T15:00", "2026-07-09T15:00"),  # 4 July is a Saturday: observed Friday 3
    ],
)
def test_sec_is_4_business_days_skipping_weekends_and_us_federal_holidays(
    determined: str, expected: str
) -> None:
    assert due("sec", determined) == {"sec_form_8k_item_1_05": at(expected)}


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2026-01-31T08:30", "2026-02-28T08:30"),
        ("2028-01-31T08:30", "2028-02-29T08:30"),  # a leap year
        ("2026-03-31T23:59", "2026-04-30T23:59"),
        ("2026-12-15T00:00", "2027-01-15T00:00"),
        ("2026-05-17T12:00", "2026-06-17T12:00"),
    ],
)
def test_one_month_is_the_same_day_next_month_clamped(start: str, expected: str) -> None:
    assert add_month(at(start)) == at(expected)


def test_every_flag_has_rules_with_sources_and_rule_names_are_unique() -> None:
    assert {rule.flag for rule in RULES} == set(FLAGS)
    assert len({rule.name for rule in RULES}) == len(RULES)
    assert all(rule.source for rule in RULES)


def test_an_unknown_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown flag"):
        due("hipaa", "2026-03-02T10:00")
