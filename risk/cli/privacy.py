"""`risk privacy scan`: ID numbers and names of the city's residents left unmasked in logs and messages."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from risk.cli.common import Db, say, settings, warehouse

app = typer.Typer(help="个人信息保护 / personal information", no_args_is_help=True)

SHOWN = 200  # findings printed; the rest are counted


@app.command("scan", help="检查日志和消息中未脱敏的身份证号和姓名 / find unmasked ID numbers and names in logs and "
                          "messages (exit 1 if any)")
def scan(
    paths: Annotated[list[str] | None, typer.Argument(
        metavar="[PATHS]...", help="文件或目录 / files or folders (default: the log folder)")] = None,
    db: Db = None,
) -> int:
    from risk import privacy
    from risk.errors import InputError

    with warehouse(db) as conn:
        ids, names = privacy.residents(conn)
    folders = [Path(p) for p in paths or []] or [settings(db).var_dir / "logs"]
    missing = [p for p in folders if not p.exists()]
    if missing:
        raise InputError(f"找不到 / not found: {', '.join(map(str, missing))}")
    found = privacy.scan(folders, ids, names)
    for f in found[:SHOWN]:
        print(f)
    if len(found) > SHOWN:
        print(f"… 另有 {len(found) - SHOWN} 处 / {len(found) - SHOWN} more")
    say(f"检查了 / scanned {', '.join(map(str, folders))}: "
        + (f"{len(found)} 处未脱敏 / unmasked personal information found" if found
           else "未发现未脱敏的身份证号或姓名 / no unmasked ID number or name"))
    return 1 if found else 0
