"""`risk model …`: the behaviour model: train one and make it current, export it, report on it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from risk.cli import display
from risk.cli.common import Db, Out, say, settings, warehouse, write

if TYPE_CHECKING:
    from rich.console import Console

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

    result = pipeline.model_report(settings(db))
    if out is None and (console := display.terminal()):
        tables(console, result)
        return 0
    write(json.dumps(result, ensure_ascii=False, indent=1, default=str) + "\n", out)
    return 0


def tables(console: Console, report: dict) -> None:
    """`risk model report` at a terminal: the models, the nights' drift, the precision per version."""
    current = report["current_model"]
    if current is None:
        console.print("仓库中还没有模型 / no model is registered in this warehouse")
    else:
        console.print(f"当前模型 / current model: {current['version']}，窗口 window {current['window'][0]} … "
                      f"{current['window'][1]}，{current['rows']:,} 人 people，{len(current['features'])} 个特征 "
                      f"features", markup=False, highlight=False)
    display.table(console, "模型 / models", ["版本 version", "状态 status", "训练于 trained at", "窗口 window",
                                            "人数 people", "sha256"],
                  ([m["version"], m["status"], m["trained_at"], f"{m['window_start']} … {m['window_end']}",
                    _count(m["rows"]), (m["sha256"] or "")[:16] + "…"] for m in report["models"]))
    display.table(console, "每晚漂移（最近30晚）/ drift per night (the last 30)",
                  ["日期 as of", "模型 model", "人数 people", "漂移 drift", "结论 verdict"],
                  ([n["as_of"], n["model_version"], _count(n["people"]),
                    "" if n["drift"] is None else f"{n['drift']:.3f}", n["drift_word"]] for n in report["nights"]))
    display.table(console, "异常预警的精度 / precision of decided anomaly alerts",
                  ["模型 model", "预警 alerts", "确认 confirmed", "排除 dismissed", "精度 precision"],
                  ([version, p["alerts"], p["confirmed"], p["dismissed"],
                    "" if p["precision"] is None else f"{p['precision']:.0%}"]
                   for version, p in report["anomaly_precision_by_model"].items()))


def _count(n: int | None) -> str:
    return "" if n is None else f"{n:,}"
