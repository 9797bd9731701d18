"""No resident's ID number or name leaves the system unmasked in a log line or a message."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from risk import privacy
from risk.cli import main
from risk.synth import generate

ID = "11010519491231002X"  # a valid ID (the standard's own example)
LEGACY = "110105491231002"


def test_redact_masks_id_shaped_numbers_and_nothing_else() -> None:
    text = f"rows for {ID} and {ID.lower()} and legacy {LEGACY}; card A12345678, day 20250301, run 1234567890123456789012"
    out = privacy.redact(text)
    assert ID not in out and ID.lower() not in out and LEGACY not in out
    assert "110105********002X" in out and "110105*****1002" in out
    assert "A12345678" in out and "20250301" in out and "1234567890123456789012" in out


def test_log_records_are_masked_in_messages_arguments_and_tracebacks() -> None:
    privacy.install()
    privacy.install()  # twice is harmless
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("risk.test_privacy")
    logger.addHandler(handler)
    try:
        logger.warning("person %s was paid", ID)
        logger.warning(f"f-string {LEGACY}")
        try:
            raise ValueError(f"duplicate key {ID}")
        except ValueError:
            logger.exception("insert failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "110105********002X" in written and "duplicate key 110105" in written
    assert ID not in written and LEGACY not in written


def test_database_errors_carry_no_row_values(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from risk.db import gateway

    url = f"sqlite:///{tmp_path / 'w.db'}"
    gateway.migrate(url)
    from risk.db.tables import account

    with pytest.raises(sa.exc.IntegrityError) as error:
        with gateway.transaction(url) as conn:
            conn.execute(account.insert().values(user_id=ID, language="zh", updated_at=None))
    assert ID not in str(error.value) and "hidden due to hide_parameters" in str(error.value)


def test_scan_finds_planted_ids_and_names_and_never_repeats_them(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("fine line\nleak " + ID + "\n", encoding="utf-8")
    (tmp_path / "logs" / "b.txt").write_text("masked 110105********002X\n张*\n王小明 called\n", encoding="utf-8")
    (tmp_path / "logs" / "blob.bin").write_bytes(b"\0" + ID.encode())
    found = privacy.scan([tmp_path / "logs"], ids=set(), names={"王小明", "李"})
    assert [(f.path.name, f.line, f.kind) for f in found] == [("a.log", 2, "id_number"),
                                                              ("b.txt", 3, "resident_name")]
    assert all(ID not in str(f) and "王小明" not in str(f) for f in found)
    assert "a.log:2" in str(found[0])


def test_a_whole_day_from_the_command_line_leaves_no_unmasked_id_or_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`risk run` (verbose), the digests, a supervisor's day and an unmasked look, then `risk privacy scan`
    over the log folder and the outbox finds nothing; a planted leak is found."""
    generate(tmp_path / "city", people=600, months=4, seed=17)
    var = tmp_path / "var"
    monkeypatch.setenv("RISK_VAR_DIR", str(var))
    db = f"sqlite:///{tmp_path / 'w.db'}"
    outbox = tmp_path / "outbox"
    assert main(["-v", "run", "--landing", str(tmp_path / "city" / "landing"), "--db", db,
                 "--outbox", str(outbox)]) == 0
    assert main(["alerts", "export", "--db", db, "--out", str(tmp_path / "alerts.csv")]) == 0
    alert_id = (tmp_path / "alerts.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    assert main(["alerts", "show", alert_id, "--user", "audit01", "--unmask", "--db", db]) == 0
    assert main(["alerts", "escalate", "--db", db]) == 0
    assert any(outbox.glob("*.txt")), "no digest was written"
    capsys.readouterr()

    assert main(["privacy", "scan", str(var / "logs"), str(outbox), "--db", db]) == 0
    assert "no unmasked ID number or name" in capsys.readouterr().err

    from risk.db import gateway
    from risk.db.tables import recipient

    with gateway.transaction(db) as conn:
        person, name = conn.execute(recipient.select().with_only_columns(recipient.c.person_id,
                                                                          recipient.c.name)).first()
    with (var / "logs" / "risk.log").open("a", encoding="utf-8") as log:
        log.write(f"someone printed {person} {name}\n")
    assert main(["privacy", "scan", str(var / "logs"), "--db", db]) == 1
    out = capsys.readouterr().out
    assert "risk.log:" in out and person not in out and name not in out


FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in ID)  # １１０１０５…００２X


def test_the_access_log_keeps_a_line_whose_url_holds_an_id_number_masked() -> None:
    """uvicorn's access log reads its five arguments itself: masking must keep them (it once replaced them
    with none, the formatter failed, and every line with an ID number in its URL was lost)."""
    from uvicorn.logging import AccessFormatter

    privacy.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    logger = logging.getLogger("uvicorn.access.test_privacy")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info('%s - "%s %s HTTP/%s" %d', "10.0.0.7:51234", "GET", f"/search?person_id={ID}", "1.1", 200)
        logger.info('%s - "%s %s HTTP/%s" %d', "10.0.0.7:51234", "GET", "/alerts?page=2", "1.1", 200)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        '10.0.0.7:51234 - "GET /search?person_id=110105********002X HTTP/1.1" 200 OK',
        '10.0.0.7:51234 - "GET /alerts?page=2 HTTP/1.1" 200 OK']


def test_full_width_id_numbers_are_masked_as_half_width_ones_and_found_by_the_scan(tmp_path: Path) -> None:
    mixed = ID[:9] + FULL_WIDTH[9:]
    text = f"key {FULL_WIDTH}, mixed {mixed}, lowercase {FULL_WIDTH[:17]}ｘ, day ２０２５０３０１"
    out = privacy.redact(text)
    assert FULL_WIDTH not in out and mixed not in out and FULL_WIDTH[:17] + "ｘ" not in out
    assert f"key {privacy.mask_id(FULL_WIDTH)}," in out and "１１０１０５********００２X" in out
    assert "day ２０２５０３０１" in out  # an eight-digit date is no ID number

    privacy.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("risk.test_privacy.full_width")
    logger.addHandler(handler)
    try:
        logger.warning("rejected %s", FULL_WIDTH)
    finally:
        logger.removeHandler(handler)
    assert FULL_WIDTH not in stream.getvalue() and "１１０１０５********００２X" in stream.getvalue()

    (tmp_path / "a.log").write_text(f"leak {FULL_WIDTH}\nknown {mixed}\n", encoding="utf-8")
    found = privacy.scan([tmp_path], ids={ID})
    assert [(f.line, f.kind) for f in found] == [(1, "resident_id"), (2, "resident_id")]
    assert all(FULL_WIDTH not in str(f) and ID not in str(f) for f in found)
    assert [f.kind for f in privacy.scan([tmp_path])] == ["id_number", "id_number"]  # a valid check character


def test_the_quality_export_and_report_treat_a_full_width_id_as_a_half_width_one(db_url: str, tmp_path: Path) -> None:
    """`risk quality export`: `key` is the key column as delivered (contract §5), a half-width ID number as
    much as a full-width one; the reason masks both; the report and the log mask both."""
    import csv

    from helpers import base_day, load, make_id, recipient, settings, write

    from risk.db import gateway
    from risk.ingest import quality

    half = make_id(seq=3)
    half = half[:17] + ("0" if half[17] != "0" else "1")  # a wrong check character: rejected
    full = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in make_id(seq=4))  # rejected
    landing = tmp_path / "landing"
    base_day(landing)
    write(landing, "2025-03-02", "recipients", [recipient(half), recipient(full)])
    load(settings(db_url, tmp_path), landing, "2025-03-01", "2025-03-02")
    with gateway.transaction(db_url) as conn:
        rows = list(csv.DictReader(io.StringIO(quality.export_csv(conn))))
        report = quality.write_report(conn, tmp_path / "report").read_text(encoding="utf-8")
    by_key = {r["key"]: r for r in rows if r["source"] == "recipients"}
    assert set(by_key) == {half, full}
    for value in (half, full):
        assert value not in by_key[value]["reason"] and privacy.mask_id(value) in by_key[value]["reason"]
        assert value not in report and privacy.mask_id(value) in report


def test_bank_card_numbers_are_masked_in_free_text_as_card_slips_print_them() -> None:
    text = "paid into 6222021234567890 and 6222021234567890123, ref 12345678901234 and 12345678901234567890"
    out = privacy.redact(text)
    assert "6222021234567890" not in out and "622202******7890" in out
    assert "6222021234567890123" not in out and "622202*********0123" in out
    # 14 and 20 digits are neither an ID nor a card number
    assert "12345678901234" in out and "12345678901234567890" in out


def test_every_personal_column_of_the_contract_declares_how_it_is_masked() -> None:
    from risk.contract import SOURCES, Personal, Type
    from risk.identity.numbers import mask

    declared = {(s.name, c.name): c.personal for s in SOURCES for c in s.columns if c.personal}
    # every resident ID column, every person's name, every account, card and phone number; a place's name is none
    for s in SOURCES:
        for c in s.columns:
            if c.type is Type.PERSON_ID:
                assert declared[(s.name, c.name)] is Personal.ID
    assert ("regions", "name") not in declared
    assert {k for k, v in declared.items() if v is Personal.NAME} == {
        ("recipients", "name"), ("deaths", "name"), ("incarcerations", "name"), ("supervisors", "name")}
    assert {k for k, v in declared.items() if v is Personal.NUMBER} == {
        ("recipients", "bank_account"), ("recipients", "card_no"), ("recipients", "phone"),
        ("payments", "bank_account"), ("card_events", "card_no")}
    assert mask(ID, Personal.ID) == "110105********002X"
    assert mask("欧阳小明", Personal.NAME) == "欧***"
    assert mask("13800138000", Personal.NUMBER) == "*******8000"
    assert mask("A12345678", Personal.NUMBER) == "*********"


def test_a_rejected_rows_reason_masks_each_value_as_its_column_declares() -> None:
    import pandas as pd

    from risk.contract import BY_NAME
    from risk.ingest import checks

    source = BY_NAME["recipients"]
    frame = pd.DataFrame([{"person_id": ID, "name": "张三丰", "bank_account": "6222021234567890123",
                           "card_no": "A12345678", "phone": "13800138000"}])
    failures = [checks.Failure(0, f, f, "bad") for f in ("person_id", "name", "bank_account", "card_no", "phone")]
    _, reason, _ = checks.reasons_by_row(failures, frame, source.personal)[0]
    assert ID not in reason and "110105********002X" in reason
    assert "张三丰" not in reason and "张**" in reason
    assert "6222021234567890123" not in reason and "***************0123" in reason
    assert "A12345678" not in reason and "13800138000" not in reason and "*******8000" in reason
