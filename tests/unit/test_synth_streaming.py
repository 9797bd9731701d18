"""The generator streams: month by month, files that say what the summary says, the same bytes in
any process, and memory that does not grow with the months."""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from risk.synth import generate
from risk.synth.render import TEXT
from risk.synth.writer import write_csv


def _run(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})}, cwd=Path(__file__).parents[2])
    return done.stdout.strip()


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _peak_mib(out: Path, people: int, months: int) -> float:
    """Peak resident memory of a fresh process that generates the city."""
    return float(_run(
        "import resource; from risk.synth import generate; "
        f"generate({str(out)!r}, people={people}, months={months}, seed=4); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"))


def test_summary_counts_the_rows_in_the_files(tmp_path: Path) -> None:
    summary = generate(tmp_path, people=800, months=6, seed=8)
    rows: Counter = Counter()
    for path in (tmp_path / "landing").glob("*/*"):
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        rows[path.name.split(".")[0]] += len(list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))) - 1
    assert dict(rows) == summary["rows"]
    readme = (tmp_path / "truth" / "README.md").read_text(encoding="utf-8")
    assert all(f"| `{source}` | {n} |" in readme for source, n in rows.items())
    days = {p.name for p in (tmp_path / "landing").iterdir()}
    assert len(days) == summary["days"] and {f"2025-0{m}-10" for m in range(1, 7)} <= days


def test_same_bytes_in_another_process(tmp_path: Path) -> None:
    """Nothing depends on the order of a set or a dict of strings (PYTHONHASHSEED)."""
    for n, hash_seed in enumerate(("1", "2")):
        _run(f"from risk.synth import generate; generate({str(tmp_path / str(n))!r}, people=700, months=5, seed=6)",
             env={"PYTHONHASHSEED": hash_seed})
    assert _digest(tmp_path / "0") == _digest(tmp_path / "1")


def test_memory_does_not_grow_with_months(tmp_path: Path) -> None:
    """A year and a half costs no more memory than four months: only one month is held at a time.
    (Holding every month, as the generator once did, took 2.2 times as much here.)"""
    short = _peak_mib(tmp_path / "short", 30000, 4)
    long = _peak_mib(tmp_path / "long", 30000, 18)
    assert len(list((tmp_path / "long" / "landing").iterdir())) > 3 * len(list((tmp_path / "short" / "landing").iterdir()))
    assert long < short * 1.3, (short, long)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_csv_text_reads_back_as_written(eol: str) -> None:
    """Fields with commas, quotes, line ends, Chinese or nothing at all read back unchanged."""
    rng = random.Random(5)
    alphabet = ["a", "7", ",", '"', "\r", "\n", " ", "补", "发", "-", ""]
    rows = [["".join(rng.choices(alphabet, k=rng.randint(0, 6))) for _ in range(3)] for _ in range(400)]
    names = ["a", "b,c", 'd"']
    table = pa.table({name: pa.array([r[k] for r in rows], TEXT) for k, name in enumerate(names)})
    out = io.BytesIO()
    write_csv(out, table, eol)
    text = out.getvalue().decode("utf-8")
    assert text.startswith('a,"b,c","d"""' + eol) and text.endswith(eol)
    assert list(csv.reader(io.StringIO(text, newline=""))) == [names] + rows
    plain = pa.table({"x": pa.array(["1", "2"], TEXT), "y": pa.array(["", "b"], TEXT)})
    out = io.BytesIO()
    write_csv(out, plain, eol, bom=True)
    assert out.getvalue() == ("\ufeffx,y" + eol + "1," + eol + "2,b" + eol).encode("utf-8")
