"""The `risk` command (contract §6), on Typer with Rich: `app` (risk.cli.app) and one module per command
group; `main` runs it. Exports go to standard output unless --out; messages and progress go to standard
error (risk.cli.display: tables and progress bars on a terminal only)."""
from risk.cli.app import app, main

__all__ = ["app", "main"]
