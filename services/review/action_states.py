"""An action's states as data: the moves allowed between them and their guards.

open → in_progress → done → verified (verified only for an action that asks for it, and not by
its owner). An action that will not be done needs a manager's approval: a manager or admin
moves it to wont_do with a reason; anyone else asks with wont_do_requested and a reason, and a
manager approves (→ wont_do) or it goes back to open (withdrawn or refused). Done and verified
go back to open with a reason (it was not done after all). wont_do is final. A refused move
says why: 409 for what the state does not allow, 403 for who may not, 422 for a missing reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from firebreak.errors import DomainError, Forbidden, InvalidArgument

OPEN, IN_PROGRESS, DONE, VERIFIED = "open", "in_progress", "done", "verified"
WONT_DO_REQUESTED, WONT_DO = "wont_do_requested", "wont_do"
STATUSES = (OPEN, IN_PROGRESS, DONE, VERIFIED, WONT_DO_REQUESTED, WONT_DO)
# Still to be done: these fall overdue after their due time.
PENDING = frozenset({OPEN, IN_PROGRESS, WONT_DO_REQUESTED})
KINDS = ("remediation", "recovery", "corrective", "preventive")
# Kinds whose effect is checked some time after they are done (ISO 45001 §10.2, 27001 §10.1).
CHECKED_KINDS = frozenset({"corrective"})


class MoveRefused(DomainError):
    """A move the action's state does not allow (409)."""


@dataclass(frozen=True)
class Move:
    source: str
    target: str
    needs_reason: bool = False
    needs_approver: bool = False  # a manager's or admin's (the permission table's action_approve)
    not_by_owner: bool = False
    only_if_verification_required: bool = False


MOVES: dict[tuple[str, str], Move] = {
    (move.source, move.target): move
    for move in (
        Move(OPEN, IN_PROGRESS),
        Move(IN_PROGRESS, OPEN),
        Move(OPEN, DONE),
        Move(IN_PROGRESS, DONE),
        Move(DONE, VERIFIED, not_by_owner=True, only_if_verification_required=True),
        Move(DONE, OPEN, needs_reason=True),
        Move(VERIFIED, OPEN, needs_reason=True),
        Move(OPEN, WONT_DO_REQUESTED, needs_reason=True),
        Move(IN_PROGRESS, WONT_DO_REQUESTED, needs_reason=True),
        Move(WONT_DO_REQUESTED, OPEN),
        Move(WONT_DO_REQUESTED, WONT_DO, needs_approver=True),
        Move(OPEN, WONT_DO, needs_reason=True, needs_approver=True),
        Move(IN_PROGRESS, WONT_DO, needs_reason=True, needs_approver=True),
    )
}


def moves_from(status: str) -> list[str]:
    return [target for source, target in MOVES if source == status]


def check_move(
    *,
    status: str,
    target: str,
    reason: str,
    approver: bool,
    by_owner: bool,
    verification_required: bool,
) -> Move:
    """The move from `status` to `target`, if this caller may make it now; raises otherwise."""
    if target not in STATUSES:
        raise InvalidArgument("status", f"must be one of {', '.join(STATUSES)}")
    allowed = ", ".join(moves_from(status)) or "nothing: it is final"
    if target == status:
        raise MoveRefused(f"the action is {status} already; from {status} it can go to {allowed}")
    move = MOVES.get((status, target))
    if move is None:
        raise MoveRefused(
            f"an action cannot go from {status} to {target}; from {status} it can go to {allowed}"
        )
    if move.only_if_verification_required and not verification_required:
        raise MoveRefused("the action needs no verification: done is as far as it goes")
    if move.not_by_owner and by_owner:
        raise Forbidden("an action is verified by someone other than its owner")
    if move.needs_approver and not approver:
        raise Forbidden(
            "wont_do needs a manager's approval: a manager or admin sets it; ask for it with "
            "wont_do_requested and a reason"
        )
    if move.needs_reason and not reason.strip():
        raise InvalidArgument("reason", f"is required to move an action to {target}")
    return move
