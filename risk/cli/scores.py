"""`risk scores export`: the behaviour scores (contract §6)."""
from __future__ import annotations

import typer

from risk.cli.common import CsvOnly, Db, Out, in_warehouse, write

app = typer.Typer(help="行为评分 / behaviour scores", no_args_is_help=True)


@app.command("export", help="导出评分 / export scores (person_id, score, model_version, top_features)")
def export(
    fmt: CsvOnly = "csv",
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.scoring import report

    write(in_warehouse(db, report.scores_csv), out)
    return 0
