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
