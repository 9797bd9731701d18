"""How far along a long step is, as a line and as numbers.

A progress sink is a `Callable[[str], None]`: the nightly run's standard error, a log, a test prints each
line it is given. Some lines also say how far along their step is: a `Step` is such a line (a `str`, so a
sink that only prints never notices), and the command line's progress bar reads its numbers on a terminal
(risk.cli.display)."""
from __future__ import annotations


class Step(str):
    """A progress line that is also `done` units (delivery days, …) of `total`, the last one of `rows` rows."""

    done: int
    total: int
    rows: int

    def __new__(cls, line: str, done: int, total: int, rows: int = 0) -> Step:
        step = super().__new__(cls, line)
        step.done, step.total, step.rows = done, total, rows
        return step

    def __reduce__(self):  # copied or pickled whole, numbers and all
        return Step, (str(self), self.done, self.total, self.rows)
