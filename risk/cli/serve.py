"""`risk serve`: the web app where supervisors work their alerts."""
from __future__ import annotations

from typing import Annotated

import typer

from risk.cli.common import Db, say, settings

app = typer.Typer()


@app.command("serve", help="启动网页 / serve the web app")
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    forwarded_allow_ips: Annotated[str, typer.Option(
        "--forwarded-allow-ips",
        help="信任其转发头的反向代理 / reverse proxies whose X-Forwarded-* headers are trusted")] = "127.0.0.1",
    db: Db = None,
) -> int:
    import gc

    import uvicorn

    from risk.db.gateway import safe_url
    from risk.web.app import create_app

    config = settings(db)
    say(f"网页 / web app: http://{host}:{port}/  (仓库 warehouse: {safe_url(config.database_url)})")
    web = create_app(config)
    # what the imports made (pandas, SQLAlchemy, …) lives as long as the server: out of the garbage
    # collector's sight, a full collection no longer walks it (it took 0.3 s here, in the middle of a page)
    gc.collect()
    gc.freeze()
    uvicorn.run(web, host=host, port=port, log_level="info", proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips)
    return 0
