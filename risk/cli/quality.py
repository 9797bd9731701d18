"""`risk quality …`: what was rejected and why, each delivered file's ledger, the data-quality report, and
the expectation suites of checks/ against the contract."""
from __future__ import annotations

from typing import Annotated

import typer

from risk.cli.common import CsvOnly, Db, Out, csv_text, in_warehouse, say, settings, warehouse, write

app = typer.Typer(help="数据质量 / data quality", no_args_is_help=True)


@app.command("export", help="导出拒收行 / export rejected rows")
def export(
    fmt: CsvOnly = "csv",
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.ingest import quality

    write(in_warehouse(db, quality.export_csv), out)
    return 0


@app.command("ledger", help="每个文件的台账 / per-file ledger (exit 1 if a file does not balance)")
def ledger(out: Out = None, db: Db = None) -> int:
    from risk.ingest import quality

    with warehouse(db) as conn:
        led = quality.ledger(conn)
    write(csv_text(list(led.columns), led.itertuples(index=False)), out)  # a file name is text a spreadsheet could run
    unbalanced = led[~led["balanced"]]
    if len(unbalanced):
        say(f"{len(unbalanced)} 个文件不平衡 / files do not balance")
        return 1
    return 0


@app.command("report", help="生成数据质量报告 / write the data-quality report")
def report(db: Db = None) -> int:
    from risk import pipeline

    say(f"数据质量报告 / data-quality report: {pipeline.write_quality_report(settings(db))}")
    return 0


@app.command("suites", help="检查或重写 checks/ 的期望套件 / check or rewrite the expectation suites")
def suites(rewrite: Annotated[bool, typer.Option("--write")] = False) -> int:
    from risk.ingest import checks

    if rewrite:
        for p in checks.write_suites():
            say(f"written {p}")
        return 0
    stale = checks.stale_suites()
    if stale:
        say(f"checks/ 与数据约定不一致 / checks/ differs from the contract: {', '.join(stale)}; "
            "run `risk quality suites --write`")
        return 1
    say("checks/ 与数据约定一致 / checks/ agrees with the contract")
    return 0
