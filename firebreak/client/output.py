"""What the client commands print: tables and colour (rich) on a terminal, plain JSON with
--json, progress bars on standard error when it is a terminal and --json is not given."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

STATUS_STYLES = {
    "reported": "yellow",
    "triaged": "yellow",
    "acknowledged": "cyan",
    "contained": "blue",
    "resolved": "green",
    "closed": "dim",
    "declined": "dim",
    "merged": "dim",
}
PRIORITY_STYLES = {"P1": "bold red", "P2": "red", "P3": "yellow", "P4": "dim"}
# Piped, a table is as wide as its content: lines cut at 80 columns would break `grep`.
PIPED_WIDTH = 1000


class Output:
    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        terminal = sys.stdout.isatty()
        self.console = Console(width=None if terminal else PIPED_WIDTH, highlight=False)
        self._errors = Console(stderr=True, highlight=False)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, ensure_ascii=False), flush=True)

    def line(self, text: str) -> None:
        """Rich markup; what came from the API must be escape()d first."""
        self.console.print(text)

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
    ) -> None:
        """Rows of rich markup (what came from the API escape()d); `numeric` columns are
        right-aligned."""
        table = Table(box=None, header_style="bold", pad_edge=False)
        for index, header in enumerate(headers):
            table.add_column(header, justify="right" if index in numeric else "left")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Name: value lines, the names aligned."""
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for name, value in pairs:
            grid.add_row(name, value)
        self.console.print(grid)

    def warn(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)  # as it is: rich would wrap it at 80 columns

    @contextmanager
    def progress(
        self, description: str, total: int | None
    ) -> Iterator[Callable[[int, int | None], None]]:
        """A bar for a transfer of `total` bytes (unknown: None), or nothing where no one sees
        it; yields `advance(bytes, total)`."""
        if self.as_json or not self._errors.is_terminal:
            yield lambda _sent, _total: None
            return
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._errors,
            transient=False,
        )
        with bar:
            task = bar.add_task(escape(description), total=total)

            def advance(sent: int, new_total: int | None) -> None:
                if new_total is not None:
                    bar.update(task, total=new_total)
                bar.advance(task, sent)

            yield advance


def styled(value: str | None, styles: dict[str, str]) -> str:
    if value is None:
        return "-"
    style = styles.get(value)
    return f"[{style}]{escape(value)}[/]" if style else escape(value)


def when(value: str | None) -> str:
    """An API timestamp in local time, to the second."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")
