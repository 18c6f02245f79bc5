"""The exit codes of the client commands, which scripts test, and the errors behind them."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    DONE = 0
    # The API answered 4xx, what was asked for is not there, or evidence is not intact.
    REFUSED = 1
    USAGE = 2  # argparse's own code for a bad command line
    UNREACHABLE = 3  # the gateway (or Jaeger) did not answer, or answered 5xx
    NOT_LOGGED_IN = 4


EXIT_CODES_HELP = """\
exit codes:
  0  done
  1  refused: the API answered 4xx (its problem's title, detail and field are printed), what
     was asked for is not there, or `evidence verify` found the item or archive not intact
  2  usage error
  3  the gateway (or Jaeger) is unreachable or answered 5xx
  4  not logged in: run `firebreak login`, or set FIREBREAK_KEY (and FIREBREAK_URL)"""


class CommandFailed(Exception):
    """Ends a command with `code`, `message` on standard error."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Refused(CommandFailed):
    """The API's 4xx answer, an RFC 7807 problem."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(ExitCode.REFUSED, _problem_text(status, problem))


def _problem_text(status: int, problem: dict[str, Any]) -> str:
    title = problem.get("title") or "refused"
    text = f"{status} {title}"
    if detail := problem.get("detail"):
        text += f": {detail}"
    for error in problem.get("errors") or []:
        if not isinstance(error, dict) or not error.get("field"):
            continue
        named = f"{error['field']}: {error.get('message', '')}"
        if named not in text:  # a 422's detail names its fields already
            text += f"\n  {named}"
    if status == 401:
        text += "\n  (log in again: firebreak login)"
    return text
