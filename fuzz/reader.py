"""Coverage-guided fuzzing of the delivered-file reader with atheris (`make fuzz`; a bounded run).

    .venv/bin/python fuzz/reader.py -max_total_time=60 -rss_limit_mb=2048 [corpus folder]

Whatever bytes arrive, reading a file ends in its rows (with row problems for the quality queue) or in a
`FileRejected` with a reason: any other exception, a crash, a hang or memory past the limit is a finding,
and libFuzzer writes the input that caused it (crash-*, oom-*, timeout-*) to the working folder. The first
byte picks the source, the rest is the file (as `_raw` leaves it: decompressed, without a BOM); a small row
limit lets the fuzzer reach the long-line path with short inputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["risk.ingest.read"]):
    from risk.contract import SOURCES
    from risk.errors import FileRejected
    from risk.ingest.read import Limits, read_bytes

LIMITS = Limits(row_bytes=512)


def one_input(data: bytes) -> None:
    if not data:
        return
    source = SOURCES[data[0] % len(SOURCES)]
    try:
        read = read_bytes(source, bytearray(data[1:]), Path(f"2025-03-10/{source.name}.csv"), LIMITS)
    except FileRejected:
        return
    frame = read.frame
    for column in source.column_names:
        if any("\x00" in value for value in frame[column].tolist()):
            raise AssertionError(f"a NUL byte got through in {column}")
    lines = frame["_line"].tolist() + [line for line, _field, _why in read.bad_rows]
    if len(lines) != len(set(lines)):
        raise AssertionError("a line was read twice")


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
