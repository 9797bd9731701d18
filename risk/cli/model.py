"""`risk model …`: the behaviour model: train one and make it current, export it, report on it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from risk.cli.common import Db, Out, say, settings, warehouse, write

app = typer.Typer(help="行为模型 / behaviour model", no_args_is_help=True)


@app.command("train", help="训练并启用新模型 / train a model and make it current")
def train(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="DAY", help="窗口结束日 / window ends on this day (default: newest loaded day)")] = None,
    db: Db = None,
) -> int:
    from risk import pipeline

    result = pipeline.train_model(settings(db), as_of=as_of)
    say(f"已训练并启用 / trained and made current: {result['version']} on {result['rows']:,} people, "
        f"window {result['window'][0]} … {result['window'][1]}, sha256 {result['sha256'][:16]}…")
    return 0


@app.command("export", help="把当前模型导出为 skops 文件 / write the current model's skops file (a copy: the "
                            "warehouse keeps the model)")
def export(
    out: Annotated[str, typer.Option("--out", metavar="FILE", help="skops 文件 / the skops file to write")],
    db: Db = None,
) -> int:
    from risk.errors import InputError
    from risk.scoring import registry

    with warehouse(db) as conn:
        registered = registry.current(conn)
        if registered is None:
            raise InputError("仓库中还没有模型 / no model is registered in this warehouse")
        sha = registry.export(conn, settings(db), registered, Path(out))
    say(f"已导出 / exported {registered.version} to {out}, sha256 {sha} (the warehouse keeps the model: "
        f"this copy is for inspection)")
    return 0


@app.command("report", help="模型、漂移与精度 / the model, drift and precision per version")
def report(out: Out = None, db: Db = None) -> int:
    from risk import pipeline

    write(json.dumps(pipeline.model_report(settings(db)), ensure_ascii=False, indent=1, default=str) + "\n", out)
    return 0

