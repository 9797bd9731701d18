"""The night from the command line: `risk run` (every pending delivery day, then the rules, scoring, the
quality report and the digests) and `risk notify` (the digests alone)."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from risk.cli import display
from risk.cli.common import Db, say, settings

app = typer.Typer()


@app.command("run", help="加载所有未加载的交付日，然后检测 / load every pending delivery day, then detect")
def run(
    landing: Annotated[str, typer.Option("--landing", metavar="DIR", help="落地目录 / landing folder")],
    until: Annotated[str | None, typer.Option(
        "--until", metavar="DAY", help="只加载此日（含）之前的交付日 / load delivery days up to this day (YYYY-MM-DD)")] = None,
    outbox: Annotated[str | None, typer.Option(
        "--outbox", metavar="DIR", help="每日摘要写入此目录而不发送 / write the digests to files here instead of "
                                        "sending (default: RISK_OUTBOX)")] = None,
    no_digests: Annotated[bool, typer.Option("--no-digests", help="不发送每日摘要 / do not send the digests")] = False,
    wait: Annotated[float, typer.Option(
        "--wait", metavar="SECONDS", help="仓库被另一个运行占用时最多等待的秒数 / wait this long for another run "
                                          "that holds the warehouse (default: stop at once, saying who holds it)")] = 0,
    db: Db = None,
) -> int:
    from risk import pipeline

    config = settings(db, outbox)
    with display.progress("加载交付日 / delivery days") as progress:
        summary = pipeline.run(config, landing, until=until, progress=progress, send_digests=not no_digests,
                               wait=wait)
    runs = config.var_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "last-run.json").write_text(json.dumps(asdict(summary), ensure_ascii=False, indent=1), encoding="utf-8")
    steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in summary.steps.items())
    say(f"完成 / done in {summary.seconds:.1f} s ({steps}); 数据质量报告 / data-quality report: {summary.report}")
    return 0


@app.command("notify", help="给监督人员发送每日摘要 / send each supervisor their digest")
def notify(
    outbox: Annotated[str | None, typer.Option(
        "--outbox", metavar="DIR", help="写入此目录而不发送 / write each message to a file in this folder instead")] = None,
    db: Db = None,
) -> int:
    from risk import pipeline

    result = pipeline.notify(settings(db, outbox), outbox=outbox)
    say(f"摘要 / digests: {result['digests']}，发送 sent {result['sent']}，失败 failed {result['failed']}")
    return 0
