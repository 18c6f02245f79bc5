"""Dead letters: the messages a service's consumer gave up on, parked in the service's own
database with their stream sequence, subject, event id and error, counted, listed for admins,
and replayed or discarded by hand (issue 12, §3).

`store` keeps them; `server` serves them over gRPC (firebreak.admin.v1.DeadLetterService)."""

from firebreak.dead_letters.store import (
    DeadLetters,
    ParkReason,
    count_parked,
    define_dead_letter_table,
)

__all__ = ["DeadLetters", "ParkReason", "count_parked", "define_dead_letter_table"]
