"""Synthetic city: a contract-true landing (data contract §1-2) with planted cases and their truth.

    from risk.synth import generate
    summary = generate("out", people=5000, months=12, seed=0)

writes `out/landing/<YYYY-MM-DD>/<source>.csv[.gz]` and `out/truth/` (expected alerts with exact
amounts, expected rejects with file lines, planted lawful exceptions, behavioural outliers, README).
Deterministic for a seed; background people break no §4 rule.
"""
from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from risk.progress import Step
from risk.synth import tables
from risk.synth.lawful import plant_lawful, plant_outliers
from risk.synth.master import master_data
from risk.synth.months import WRITER, Months, Stream
from risk.synth.people import background, finalize_ids
from risk.synth.planted import plant_rules
from risk.synth.quirks import Quirks
from risk.synth.regions import build_regions, build_supervisors
from risk.synth.render import Delivery, Texts
from risk.synth.timeline import Calendar
from risk.synth.world import World
from risk.synth.writer import Landing, write_truth

__all__ = ["generate"]

MIN_PEOPLE = 500
MIN_MONTHS = 4


def generate(out: str | Path, people: int = 5000, months: int = 12, seed: int = 0, start: str = "2025-01",
             progress: Callable[[str], None] | None = None) -> dict:
    """Generate a city of `people` recipients over `months` months from `start` (YYYY-MM) into `out`.

    Returns a summary: rows per source, planted alerts per rule, lawful cases, rejects, timings.
    An existing `out/landing` and `out/truth` are replaced.
    """
    if people < MIN_PEOPLE:
        raise ValueError(f"people must be at least {MIN_PEOPLE}")
    if months < MIN_MONTHS:
        raise ValueError(f"months must be at least {MIN_MONTHS}")
    say = progress or (lambda _msg: None)
    t0 = time.monotonic()
    root = Path(out)
    for sub in ("landing", "truth"):
        shutil.rmtree(root / sub, ignore_errors=True)
    rng = np.random.default_rng(seed)
    cal = Calendar(start, months)

    regions = build_regions(rng, people)
    supervisors = build_supervisors(rng, regions)
    reserve = max(300, int(people * 0.06))
    pop = background(rng, people, cal, regions, reserve)
    w = World(cal=cal, rng=rng, regions=regions, pop=pop, scale=people / 5000)
    plant_rules(w)
    plant_lawful(w)
    plant_outliers(w)
    finalize_ids(rng, pop)
    say(f"population: {people} people in {len(regions.villages)} villages, {w.next_reserved} planted, "
        f"{len(w.outliers)} outliers")

    year = Months(w)
    deaths = tables.deaths(w)
    jail = tables.incarcerations(w)
    files: tables.Files = {}  # the small sources, whole; payments and card events are streamed
    tables.split(deaths, tables.render_deaths(deaths), "deaths", "record_id", files)
    tables.split(jail, tables.render_jail(jail), "incarcerations", "record_id", files)
    master_data(w, files, supervisors, year.certs)
    quirks = Quirks(w, files)
    quirks.deaths(deaths, len(deaths))
    quirks.incarcerations(jail, len(jail))
    say(f"records: {len(deaths)} death records, {len(jail)} custody records; streaming the landing")

    landing = Landing(root, cal, year.stream(WRITER, 0))
    texts = Texts.of(w)
    streams = {"payments": Stream(year, texts, "payments"), "card_events": Stream(year, texts, "card_events")}
    schedule = sorted({(d, s) for d, s in files}
                      | {(str(cal.pay_day(m)), "payments") for m in range(cal.months)}
                      | {(str(cal.card_day(m)), "card_events") for m in range(cal.months)})
    days = sorted({d for d, _ in schedule})
    for done, day in enumerate(days, 1):
        before, written = landing.rows.total(), []
        for source in sorted(s for d, s in schedule if d == day):
            if source in streams:
                delivery = streams[source].file(int(cal.month_of(np.datetime64(day))) - (source == "card_events"))
            else:
                delivery = Delivery.of_frame(files.pop((day, source)))
            written.append(landing.write(day, source, delivery))
        say(Step(f"{day}: " + ", ".join(written), done, len(days), landing.rows.total() - before))
    rejects, rows = landing.rejects, landing.rows
    summary = {
        "out": str(root), "people": people, "months": months, "seed": seed, "start": start,
        "days": len(days),
        "rows": dict(sorted(rows.items())),
        "planted": dict(sorted(Counter(rule for rule, _ in w.alerts).items())),
        "lawful": dict(sorted(Counter(case for case, _i, _n in {(c, i, "") for c, i, _ in w.lawful}).items())),
        "variants": dict(sorted(Counter(str(pop.tag[i]) for _rule, i in w.alerts).items())),
        "rejects": len(rejects),
        "outliers": len(w.outliers),
    }
    write_truth(root, w, rejects, summary)
    summary["seconds"] = round(time.monotonic() - t0, 1)
    say(f"done in {summary['seconds']} s: {sum(rows.values())} rows, {len(w.alerts)} expected alerts, "
        f"{len(rejects)} expected rejects")
    return summary
