"""A synthetic city: `risk generate` writes one (a landing and its truth), `risk evaluate` compares the
alerts with that truth, `risk demo` takes one through the real nightly DAG."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from risk.cli import display
from risk.cli.common import Db, Out, say, warehouse, write

app = typer.Typer()


@app.command("generate", help="生成合成城市数据 / generate a synthetic city landing")
def generate(
    out: Annotated[str, typer.Option("--out", metavar="DIR")],
    people: Annotated[int, typer.Option("--people")] = 5000,
    months: Annotated[int, typer.Option("--months")] = 12,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> int:
    from risk import synth

    with display.progress("写入交付日 / delivery days written") as progress:
        result = synth.generate(out, people=people, months=months, seed=seed, progress=progress)
    say(json.dumps(result, ensure_ascii=False, default=str)[:2000])
    return 0


@app.command("evaluate", help="与合成城市的真值比较 / compare the alerts with a synthetic city's truth")
def evaluate(
    truth: Annotated[str, typer.Option("--truth", metavar="DIR",
                                       help="truth folder written by `risk generate` (DIR/truth)")],
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.detection import evaluate as evaluation

    with warehouse(db) as conn:
        scores, wrongs = evaluation.evaluate(conn, Path(truth))
        scoring = evaluation.evaluate_scoring(conn, Path(truth))
    write(evaluation.table(scores) + (evaluation.scoring_table(scoring) if scoring else ""), out)
    for w in wrongs:
        say(f"合法情形被误报 / lawful case flagged: {w}")
    perfect = all(s.precision == 1 and s.recall == 1 and s.exact == s.hits for s in scores) and not wrongs
    return 0 if perfect else 1


@app.command("demo", help="演示：生成城市并经Airflow运行 / demo: a synthetic city through the real DAG")
def demo(
    out: Annotated[str, typer.Option("--out", metavar="DIR")] = "var/demo",
    people: Annotated[int, typer.Option("--people")] = 5000,
    months: Annotated[int, typer.Option("--months")] = 12,
    seed: Annotated[int, typer.Option("--seed")] = 7,
) -> int:
    from risk import demo as city

    return city.main(out=Path(out), people=people, months=months, seed=seed, say=say)
