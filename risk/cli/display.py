"""What a person at a terminal sees, with Rich: tables for listings, a progress bar for a long step.

Only on an interactive terminal. Anything else (a pipe, a file, the nightly run's log, a test) gets what it
always got: CSV or JSON on standard output, byte for byte, and the plain progress lines on standard error."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from risk.cli.common import say
from risk.progress import Step

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Task, TaskID
    from rich.text import Text


def terminal(stderr: bool = False) -> Console | None:
    """A console on standard output (or error) when that is an interactive terminal, else None."""
    from rich.console import Console

    console = Console(stderr=stderr)
    return console if console.is_terminal and not console.is_dumb_terminal else None


def table(console: Console, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """`rows` under `columns`, each cell as text (no Rich markup). A heading "中文 English" is shown on two
    lines, Chinese first, so that it takes no more room than its cells."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        t.add_column(name.replace(" ", "\n", 1), overflow="fold")
    for row in rows:
        t.add_row(*(Text("" if v is None else str(v)) for v in row))
    console.print(t)


def _rows_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rows(ProgressColumn):
        """The rows read so far, and how many a second."""

        def render(self, task: Task) -> Text:
            rows = task.fields.get("rows", 0)
            seconds = task.finished_time if task.finished else task.elapsed
            rate = rows / seconds if seconds else 0.0
            return Text(f"{rows:,} 行 rows · {rate:,.0f} 行/秒 rows/s")

    return Rows()


@contextmanager
def progress(label: str) -> Iterator[Callable[[str], None]]:
    """A progress sink for a long step (`label`, Chinese / English). On a terminal: a bar of the units done
    (`risk.progress.Step`: delivery days, …) of all, the rows so far and per second, with every progress
    line shown above it. Elsewhere: each line on standard error, as it always was."""
    console = terminal(stderr=True)
    if console is None:
        yield say
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _rows_column(),
                  TimeElapsedColumn(), console=console) as bar:
        tasks: list[TaskID] = []

        def report(message: str) -> None:
            if isinstance(message, Step) and message.total:
                if not tasks:
                    tasks.append(bar.add_task(label, total=message.total, rows=0))
                rows = bar.tasks[0].fields["rows"] + message.rows
                bar.update(tasks[0], completed=message.done, total=message.total, rows=rows)
            bar.console.print(message, markup=False, highlight=False)
            if tasks and bar.tasks[0].finished:
                bar.stop()  # the bar stays as it ended; what comes next is printed below it

        yield report
