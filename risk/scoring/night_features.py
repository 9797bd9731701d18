"""The night's behaviour features, computed once for the city and shared with the scoring parts.

The features are most of what scoring costs (set-based queries over the window's card events and
payments: about two thirds of a night's scoring at 100,000 people, the model's scores and reasons most of
the rest), and one part's queries read nearly as much of the window as the city's: the facts are not
stored by county, so a part either scans them all or looks its people up one by one. Computed per part,
two parts cost twice the whole. So a night split into parts computes them once (start_scoring, for the
city, as a whole run does) and each part reads the rows of its counties and runs the model on them: the
parts together cost what the whole costs, plus a model load each.

They go from one task to the others as a Parquet file in the var folder, which every worker shares (the
model comes from the warehouse: risk.scoring.registry), named in the scoring plan with its sha256, which every read checks. The file holds
person IDs: it lives as long as the night's scoring (finish_scoring deletes it; the next night's start
removes any a failed night left behind).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from risk.errors import InputError
from risk.settings import Settings

FOLDER = "scoring"
COUNTY = "home_county"  # the column that says whose part a row belongs to


def folder(settings: Settings) -> Path:
    return settings.var_dir / FOLDER


def share(settings: Settings, features: pd.DataFrame, counties: pd.Series, as_of: date) -> dict:
    """Write the city's features (index person_id) with each person's county (`counties`, indexed like
    them) and return the reference the plan carries: file name, sha256, rows. Files of earlier nights go."""
    forget(settings)
    place = folder(settings)
    place.mkdir(parents=True, exist_ok=True)
    name = f"features-{as_of.isoformat()}.parquet"
    frame = features.assign(**{COUNTY: counties.reindex(features.index).astype("string")})
    partial = place / f".{name}.{os.getpid()}"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=True), partial)
    digest = _sha256(partial)
    partial.replace(place / name)
    return {"file": name, "sha256": digest, "rows": len(frame)}


def read(settings: Settings, shared: dict, counties: Sequence[str] | None) -> pd.DataFrame:
    """The shared features of the recipients of `counties` (None: everyone), as compute_features returns
    them; refused when the file is not the one the plan names."""
    path = folder(settings) / shared["file"]
    if not path.is_file() or _sha256(path) != shared["sha256"]:
        raise InputError(f"今晚的特征文件缺失或已改变 / the night's features file {shared['file']} is missing "
                         f"or changed: score again from start_scoring")
    filters = None if counties is None else [(COUNTY, "in", sorted(counties))]
    frame = pq.read_table(path, filters=filters).to_pandas()
    return frame.drop(columns=[COUNTY])


def forget(settings: Settings) -> None:
    """Delete the shared features (of this night and any earlier one left behind)."""
    place = folder(settings)
    if place.is_dir():
        for path in place.glob("*features-*.parquet*"):
            path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
