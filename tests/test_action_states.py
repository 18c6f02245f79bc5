"""The action state machine as data (services/review/action_states.py), by hand: every move it
allows, and each refusal with the reason it gives (HTTP: tests/test_actions.py)."""

from __future__ import annotations

from typing import Any

import pytest

from firebreak.errors import Forbidden, InvalidArgument
from services.review.action_states import MOVES, STATUSES, MoveRefused, check_move, moves_from

# Every move, written out by hand from the docstring of action_states.py.
ALLOWED = {
    ("open", "in_progress"),
    ("in_progress", "open"),
    ("open", "done"),
    ("in_progress", "done"),
    ("done", "verified"),
    ("done", "open"),
    ("verified", "open"),
    ("open", "wont_do_requested"),
    ("in_progress", "wont_do_requested"),
    ("wont_do_requested", "open"),
    ("wont_do_requested", "wont_do"),
    ("open", "wont_do"),
    ("in_progress", "wont_do"),
}
# A caller who may make any move: a manager, not the owner, with a reason.
ANYONE: dict[str, Any] = {
    "reason": "because",
    "approver": True,
    "by_owner": False,
    "verification_required": True,
}


def test_the_table_is_the_moves_written_out() -> None:
    assert set(MOVES) == ALLOWED
    assert moves_from("wont_do") == [] and moves_from("open") == [
        "in_progress",
        "done",
        "wont_do_requested",
        "wont_do",
    ]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_other_move_is_refused_saying_what_is_allowed(status: str, target: str) -> None:
    if (status, target) in ALLOWED:
        assert check_move(status=status, target=target, **ANYONE) is MOVES[status, target]
        return
    with pytest.raises(MoveRefused) as refused:
        check_move(status=status, target=target, **ANYONE)
    allowed = ", ".join(moves_from(status)) or "nothing: it is final"
    assert str(refused.value).endswith(f"it can go to {allowed}")


def test_the_guards_say_why() -> None:
    with pytest.raises(MoveRefused, match="needs no verification"):
        check_move(status="done", target="verified", **ANYONE | {"verification_required": False})
    with pytest.raises(Forbidden, match="other than its owner"):
        check_move(status="done", target="verified", **ANYONE | {"by_owner": True})
    with pytest.raises(Forbidden, match="manager's approval"):
        check_move(status="wont_do_requested", target="wont_do", **ANYONE | {"approver": False})
    for status, target in (("open", "wont_do_requested"), ("open", "wont_do"), ("done", "open")):
        with pytest.raises(InvalidArgument) as missing:
            check_move(status=status, target=target, **ANYONE | {"reason": "  "})
        assert missing.value.field == "reason"
    # An approval keeps the reason its request gave.
    check_move(status="wont_do_requested", target="wont_do", **ANYONE | {"reason": ""})
    with pytest.raises(InvalidArgument) as unknown:
        check_move(status="open", target="finished", **ANYONE)
    assert unknown.value.field == "status"
