"""The synthetic city: contract-true files, valid identities, and truth that matches the files."""
from __future__ import annotations

import csv
import gzip
import hashlib
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from risk.contract import BY_NAME, SENTENCE_TYPES
from risk.identity.numbers import birth_date_of, gender_of, try_normalise
from risk.synth import generate, oracle
from risk.synth.lawful import LAWFUL_RULE

RULES = {"deceased_payment", "card_after_death", "incarcerated_payment", "dual_benefit", "duplicate_payment",
         "shared_account", "underage_pension", "certification_overdue"}
PEOPLE, MONTHS, SEED = 1500, 12, 3


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("city")
    lines: list[str] = []
    summary = generate(out, people=PEOPLE, months=MONTHS, seed=SEED, progress=lines.append)
    assert lines, "progress is reported"
    return out, summary


def truth(root: Path, name: str) -> list[dict]:
    with (root / "truth" / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def raw(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


def files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "landing").glob("*/*") if p.is_file())


def source_of(path: Path) -> str:
    return path.name.split(".")[0]


def frame(path: Path) -> pd.DataFrame:
    return oracle.read_file(path)


def rejected(root: Path) -> set[tuple[str, str, str]]:
    return {(r["source"], r["delivery_day"], r["key"]) for r in truth(root, "expected-rejects.csv")}


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", people=600, months=5, seed=11)
    b = generate(tmp_path / "b", people=600, months=5, seed=11)
    generate(tmp_path / "c", people=600, months=5, seed=12)
    assert a["rows"] == b["rows"] and a["planted"] == b["planted"]
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_rejects_too_small(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, people=100)
    with pytest.raises(ValueError):
        generate(tmp_path, months=2)


def test_layout_and_headers_follow_the_contract(city: tuple[Path, dict]) -> None:
    root, summary = city
    days = sorted(p.name for p in (root / "landing").iterdir())
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in days)
    assert len(days) == summary["days"]
    assert {source_of(p) for p in (root / "landing" / days[0]).iterdir()} == {"regions", "recipients", "supervisors"}
    orders: dict[str, set[tuple[str, ...]]] = {}
    for path in files(root):
        assert re.fullmatch(r"[a-z_]+\.csv(\.gz)?", path.name)
        src = BY_NAME[source_of(path)]
        header = frame(path).columns
        assert set(src.required_columns) <= set(header), path
        assert set(header) - set(src.column_names) <= {"remark"}, path
        orders.setdefault(src.name, set()).add(tuple(header))
        text = raw(path).decode("utf-8")
        if "\r\n" in text:
            assert text.count("\r\n") == text.count("\n"), f"mixed line ends in {path}"
    assert all(len(o) > 1 for s, o in orders.items() if s in ("payments", "card_events")), "column order is shuffled"
    blob = {p: raw(p) for p in files(root)}
    assert sum(b.startswith(b"\xef\xbb\xbf") for b in blob.values()) == 1, "one file with a BOM"
    assert any(b"\r\n" in b for b in blob.values()), "some files with CRLF"
    assert any(p.name.endswith(".gz") for p in blob) and any(p.name == "card_events.csv" for p in blob)
    assert any("remark" in frame(p).columns for p in blob), "an unknown extra column"


def test_ids_valid_or_rejected_and_agree_with_gender_and_birth(city: tuple[Path, dict]) -> None:
    root, _ = city
    bad = rejected(root)
    legacy = lower = 0
    for path in files(root):
        src = BY_NAME[source_of(path)]
        if "person_id" not in src.column_names:
            continue
        df = frame(path)
        day = path.parent.name
        for row in df.to_dict("records"):
            pid, why = try_normalise(row["person_id"])
            if pid is None:
                assert (src.name, day, row[src.key]) in bad, (path, row, why)
                continue
            legacy += len(row["person_id"]) == 15
            lower += row["person_id"].endswith("x")
            if src.name in ("payments", "card_events", "recipients"):
                assert row["person_id"] == pid, "only deaths and custody records use other ID forms"
            if src.name == "recipients" and (src.name, day, row["person_id"]) not in bad:
                assert row["gender"] == gender_of(pid)
                assert row["birth_date"] == str(birth_date_of(pid))
    assert legacy and lower, "some legacy 15-digit IDs and some lowercase x"


def test_money_and_timestamps_are_well_formed(city: tuple[Path, dict]) -> None:
    root, _ = city
    bad = rejected(root)
    for path in files(root):
        src = source_of(path)
        if src not in ("payments", "card_events"):
            continue
        df = frame(path)
        key = BY_NAME[src].key
        good = df[[(src, path.parent.name, k) not in bad for k in df[key]]]
        assert good.amount.str.fullmatch(r"\d+\.\d{2}").all(), path
        if src == "card_events":
            assert good.occurred_at.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[08]:00").all()


def test_every_rule_and_every_lawful_case_is_planted(city: tuple[Path, dict]) -> None:
    root, summary = city
    alerts = truth(root, "expected-alerts.csv")
    assert {a["rule"] for a in alerts} == RULES == set(summary["planted"])
    assert all(re.fullmatch(r"\d+\.\d{2}", a["amount_at_risk"]) for a in alerts)
    assert Counter(a["person_id"] for a in alerts).most_common(1)[0][1] == 1, "one alert per planted person"
    lawful = truth(root, "lawful.csv")
    assert {c["case"] for c in lawful} == set(LAWFUL_RULE)
    flagged = {a["person_id"] for a in alerts}
    for case in lawful:
        assert case["person_id"] not in flagged, case
        assert case["note"].startswith(LAWFUL_RULE[case["case"]] + ":")
    outliers = truth(root, "outliers.csv")
    assert {o["kind"] for o in outliers} == {"night_far_from_home", "pharmacy_burst", "inflated_amount"}
    assert not flagged & {o["person_id"] for o in outliers}
    assert 0.002 * PEOPLE <= len(outliers) <= 0.005 * PEOPLE
    assert (root / "truth" / "README.md").read_text(encoding="utf-8").count(str(SEED))


def test_expected_rejects_point_at_the_broken_rows(city: tuple[Path, dict]) -> None:
    root, _ = city
    rejects = truth(root, "expected-rejects.csv")
    assert {r["source"] for r in rejects} == set(BY_NAME), "broken rows in every source"
    for r in rejects:
        folder = root / "landing" / r["delivery_day"]
        path = next(p for p in folder.iterdir() if source_of(p) == r["source"])
        lines = raw(path).decode("utf-8-sig").splitlines()
        header = next(csv.reader([lines[0]]))
        row = dict(zip(header, next(csv.reader([lines[int(r["line"]) - 1]])), strict=True))
        assert row[BY_NAME[r["source"]].key] == r["key"], r


def test_quirks_of_real_deliveries(city: tuple[Path, dict]) -> None:
    root, _ = city
    seen: dict[tuple[str, str], tuple] = {}
    later_same = within_file = conflicts = 0
    bad = rejected(root)
    for path in files(root):
        src = BY_NAME[source_of(path)]
        if src.kind.value != "append":
            continue
        df = frame(path)
        within_file += int(df.duplicated(src.column_names).sum())
        for row in df.to_dict("records"):
            content = tuple(row[c] for c in src.column_names)
            k = (src.name, row[src.key])
            if k in seen and seen[k][0] != path.parent.name:
                if seen[k][1] == content:
                    later_same += 1
                else:
                    conflicts += 1
                    assert (src.name, path.parent.name, row[src.key]) in bad, "a conflict is rejected"
            seen.setdefault(k, (path.parent.name, content))
    assert later_same >= 4 and within_file >= 4 and conflicts >= 4
    jail = pd.concat([frame(p) for p in files(root) if source_of(p) == "incarcerations"])
    assert set(SENTENCE_TYPES) <= set(jail.sentence_type)
    deaths = pd.concat([frame(p).assign(day=p.parent.name) for p in files(root) if source_of(p) == "deaths"])
    deaths = deaths[[("deaths", d, k) not in bad for d, k in zip(deaths.day, deaths.record_id, strict=True)]]
    assert (deaths.groupby("person_id").source.nunique() >= 2).any(), "some deaths reported by several sources"
    assert (deaths.groupby("person_id").death_date.nunique() >= 2).sum() == 1, "one case where sources disagree"
    recipients = [frame(p) for p in files(root) if source_of(p) == "recipients"]
    assert len(recipients) >= 2, "recipients are re-delivered"
    latest = pd.concat(recipients).drop_duplicates("person_id", keep="last")
    assert latest.groupby("bank_account").person_id.nunique().max() <= 2


def test_truth_agrees_with_a_plain_reading_of_the_files(city: tuple[Path, dict]) -> None:
    """The reference reader (contract §1-4 in pandas) finds exactly the expected alerts and rejects."""
    root, _ = city
    loaded = oracle.load(root / "landing")
    got = oracle.alerts(loaded)
    want = {(a["rule"], a["person_id"]): int(Decimal(a["amount_at_risk"]) * 100)
            for a in truth(root, "expected-alerts.csv")}
    assert got == want
    assert loaded.ambiguous == 0  # type: ignore[attr-defined]
    want_rejects = {(r["source"], r["delivery_day"], int(r["line"]), r["key"])
                    for r in truth(root, "expected-rejects.csv")}
    assert loaded.rejects == want_rejects


def test_scales_with_people(tmp_path: Path) -> None:
    small = generate(tmp_path / "s", people=600, months=4, seed=1)
    big = generate(tmp_path / "b", people=10000, months=4, seed=1)
    assert sum(big["planted"].values()) > 1.5 * sum(small["planted"].values())
    assert set(small["planted"]) == RULES
    loaded = oracle.load(tmp_path / "s" / "landing")
    want = {(a["rule"], a["person_id"]) for a in truth(tmp_path / "s", "expected-alerts.csv")}
    assert set(oracle.alerts(loaded)) == want
