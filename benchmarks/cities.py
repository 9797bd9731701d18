"""The city a benchmark runs on: generated once into var/bench/city-N-M-S, or an existing landing folder."""
from __future__ import annotations

import argparse
from pathlib import Path

from risk.synth import generate


def add_arguments(ap: argparse.ArgumentParser, people: int = 20000, seed: int = 5) -> None:
    ap.add_argument("--people", type=int, default=people)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--landing", type=Path, help="an existing city's landing folder (instead of generating one)")


def landing(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The landing folder (generated when missing) and the generated city's folder (None for --landing)."""
    if args.landing:
        return args.landing.resolve(), None
    city = Path(f"var/bench/city-{args.people}-{args.months}-{args.seed}").resolve()
    if not (city / "landing").is_dir():
        generate(city, people=args.people, months=args.months, seed=args.seed)
    return city / "landing", city
