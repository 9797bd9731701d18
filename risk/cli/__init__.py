"""The `risk` command (contract §6), on Typer: `app` (risk.cli.app) and one module per command group;
`main` runs it. Exports go to standard output unless --out; messages and progress go to standard error."""
from risk.cli.app import app, main

__all__ = ["app", "main"]
