"""The dashboard's SVG charts: well-formed, accessible, escaped, complete, to scale, and calm without data."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from risk.web.charts import NO_DATA, PALETTE, bar_chart, empty_chart, grouped_bar_chart, stacked_bar_chart

SVG = "{http://www.w3.org/2000/svg}"
COUNTIES = ["零陵区", "冷水滩区", "东安县"]
MONEY = "金额（元）/ amount (yuan)"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    """What a reader sees: the text elements, in order."""
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]


def every_chart(title: str, labels: list[str], values: list) -> list[str]:
    return [bar_chart(title, labels, values, MONEY),
            grouped_bar_chart(title, labels, {"涉险 / at risk": values, "已追回 / recovered": values}, MONEY),
            stacked_bar_chart(title, labels, {"乡镇 / township": values, "区县 / county": values}, MONEY)]


@pytest.mark.parametrize("svg", every_chart("各区县 / By county", COUNTIES, [1, 2, 3]) + [empty_chart("空 / empty")])
def test_an_accessible_responsive_image(svg):
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.get("width") == "100%" and len(root.get("viewBox", "").split()) == 4
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == root.get("aria-label")
    assert desc is not None and desc.text


def test_labels_are_escaped_and_shown_as_written():
    nasty = "<script>alert(1)</script>"
    for svg in every_chart(f"{nasty} & co", [nasty, "a&b"], [1, 2]):
        assert "<script>" not in svg and "a&b" not in svg
        root = parse(svg)
        assert root.get("aria-label") == f"{nasty} & co"
        assert root.find(f"{SVG}title").text == f"{nasty} & co"
        shown = texts(root)
        assert nasty in shown and "a&b" in shown
    svg = grouped_bar_chart("t", ["x"], {"<i>&</i>": [1], "b": [2]}, "<u>")
    assert "<i>" not in svg and "<u>" not in svg
    assert {"<i>&</i>", "<u>"} <= set(texts(parse(svg)))


def test_every_label_value_and_the_unit_are_shown():
    values = [Decimal("17799.40"), Decimal("49609.60"), Decimal("1234.50")]
    shown = texts(parse(bar_chart("各区县涉险金额 / At risk by county", COUNTIES, values, MONEY)))
    assert set(COUNTIES) <= set(shown)
    assert {"17,799.40", "49,609.60", "1,234.50"} <= set(shown)
    assert MONEY in shown and "各区县涉险金额 / At risk by county" in shown


def test_grouped_bars_show_both_series_with_a_legend_and_distinct_colours():
    series = {"涉险 / at risk": [100.5, 80, 0], "已追回 / recovered": [20.25, 0, 0]}
    root = parse(grouped_bar_chart("追回 / Recovered", COUNTIES, series, MONEY))
    shown = texts(root)
    assert set(series) <= set(shown) and set(COUNTIES) <= set(shown)
    assert {"100.50", "80.00", "20.25", "0.00"} <= set(shown)
    rects = bars(root)
    assert len(rects) == 6
    assert {r.get("fill") for r in rects if r.get("data-series") == "涉险 / at risk"} == {PALETTE[0]}
    assert {r.get("fill") for r in rects if r.get("data-series") == "已追回 / recovered"} == {PALETTE[1]}


def test_stacked_bars_show_each_part_and_the_total():
    months = ["2025-01", "2025-02", "2025-03"]
    series = {"乡镇 / township": [30, 50, 0], "区县 / county": [20, 40, 10]}
    root = parse(stacked_bar_chart("每月升级 / Escalations per month", months, series, "次数 / escalations"))
    shown = texts(root)
    assert set(months) <= set(shown) and set(series) <= set(shown)
    assert {"30", "50", "20", "40", "10"} <= set(shown)  # each part, inside its bar
    assert {"50", "90", "10"} <= set(shown)  # the totals on top
    assert "次数 / escalations" in shown


@pytest.mark.parametrize("svg", [
    bar_chart("空 / empty", [], [], MONEY),
    grouped_bar_chart("空 / empty", [], {}, MONEY),
    grouped_bar_chart("空 / empty", [], {"a": [], "b": []}, MONEY),
    stacked_bar_chart("空 / empty", [], {"a": []}, MONEY),
    empty_chart("空 / empty"),
])
def test_no_data_says_so(svg):
    root = parse(svg)
    assert NO_DATA in texts(root) and not bars(root)
    assert root.find(f"{SVG}title").text == "空 / empty"


def test_zero_values_draw_flat_bars_labelled_zero():
    for svg in every_chart("零 / zeros", ["a", "b"], [0, 0]):
        root = parse(svg)
        assert all(float(r.get("height")) == 0 for r in bars(root))
        assert "0" in texts(root)
    root = parse(bar_chart("t", ["a", "b"], [0, 5], "件 / alerts"))
    heights = [float(r.get("height")) for r in bars(root)]
    assert heights[0] == 0 and heights[1] > 0


def bar_heights(root: ET.Element) -> list[tuple[float, float]]:
    return [(float(r.get("data-value")), float(r.get("height"))) for r in bars(root)]


@pytest.mark.parametrize("values", [[10, 20, 35], [Decimal("0.10"), Decimal("1234.56"), Decimal("99.99")],
                                    [1, 1, 1], [7, 0, 3]])
def test_bar_heights_are_proportional_to_values(values):
    for svg in every_chart("比例 / to scale", ["a", "b", "c"], values):
        pairs = bar_heights(parse(svg))
        assert len(pairs) in (3, 6)
        peak_value, peak_height = max(pairs)
        assert peak_height > 0
        for value, height in pairs:
            assert height == pytest.approx(value / peak_value * peak_height, abs=0.02)


def test_stacked_parts_sit_on_each_other():
    root = parse(stacked_bar_chart("t", ["a"], {"x": [3], "y": [5]}, "件 / alerts"))
    lower, upper = bars(root)
    assert float(upper.get("y")) + float(upper.get("height")) == pytest.approx(float(lower.get("y")), abs=0.02)
    assert float(upper.get("height")) / float(lower.get("height")) == pytest.approx(5 / 3, rel=0.01)


def test_many_long_labels_still_all_shown():
    labels = [f"2025-{m:02d}" for m in range(1, 13)]
    root = parse(bar_chart("每月预警 / Alerts per month", labels, list(range(12)), "件 / alerts"))
    assert set(labels) <= set(texts(root))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="values for"):
        bar_chart("t", ["a", "b"], [1], "件")
    with pytest.raises(ValueError, match="≥ 0"):
        bar_chart("t", ["a"], [-1], "件")
