"""The dashboard's charts, drawn on the server as inline SVG (no JavaScript).

Pure functions: data in, SVG markup out (a `markupsafe.Markup`, so a Jinja template embeds it as it is).
Every chart
- scales to its container (viewBox, width 100%) on a narrow canvas, so its text stays readable on a phone;
- is one image to assistive technology: role="img", aria-label, <title>, and a <desc> giving every value;
- uses the Okabe–Ito palette (told apart with the common colour-vision deficiencies), with a legend;
- names its unit on the y axis (`unit` is that axis label, e.g. "金额（元）/ amount (yuan)") and writes the
  value on every bar (a stacked bar: its total on top, each part inside where it fits, all in tooltips);
- escapes every text it is given;
- says 暂无数据 / no data when there is nothing to draw.

Money is drawn in yuan: callers convert fen first (`Decimal(risk.alerts.export.yuan(cents))`). Values must be ≥ 0.

    bar_chart(title, labels, values, unit)                   one bar per label
    grouped_bar_chart(title, labels, {name: values}, unit)   bars side by side (recovered against at risk)
    stacked_bar_chart(title, labels, {name: values}, unit)   bars stacked, total on top (counts per month)
    empty_chart(title)                                       the no-data picture
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from markupsafe import Markup

Number = int | float | Decimal

NO_DATA = "暂无数据 / no data"
# Okabe & Ito (2008), "Color Universal Design"; yellow left out (too pale on white)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
DARK = {"#0072B2", "#000000"}  # white text inside these, black inside the others
FONT = "system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
WIDTH = 420  # viewBox units: a phone shows them at about 0.85 px each
PLOT_HEIGHT = 200
PAD = 8
TITLE_SIZE, TEXT_SIZE, SMALL_SIZE = 15, 13, 11
X_LABEL_ANGLE = 40  # degrees, when the labels do not fit side by side


def bar_chart(title: str, labels: Sequence[str], values: Sequence[Number], unit: str) -> Markup:
    """One bar per label, its value on top."""
    return grouped_bar_chart(title, labels, {unit: values}, unit)


def grouped_bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[Number]],
                      unit: str) -> Markup:
    """For each label, one bar per series side by side (legend when there are several series)."""
    if _no_data(labels, series):
        return empty_chart(title)
    return _draw(title, labels, series, unit, stacked=False)


def stacked_bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[Number]],
                      unit: str) -> Markup:
    """For each label (e.g. a month), the series stacked bottom-up in the given order, the total on top."""
    if _no_data(labels, series):
        return empty_chart(title)
    return _draw(title, labels, series, unit, stacked=True)


def empty_chart(title: str) -> Markup:
    """A small picture saying there is nothing to show."""
    height = 90
    body = [_text(PAD, 24, title, TITLE_SIZE, weight="bold"),
            _text(WIDTH / 2, 62, NO_DATA, TEXT_SIZE, anchor="middle", opacity=0.7)]
    return _svg(title, NO_DATA, height, body)


# ---------------------------------------------------------------- layout

@dataclass(frozen=True)
class _Frame:
    """Where the plot sits in the viewBox, and its scale."""
    left: float
    top: float
    width: float
    ymax: float
    slots: int

    @property
    def bottom(self) -> float:
        return self.top + PLOT_HEIGHT

    @property
    def slot(self) -> float:
        return self.width / self.slots

    def height_of(self, value: float) -> float:
        return round(value / self.ymax * PLOT_HEIGHT, 2)


def _draw(title: str, labels: Sequence[str], series: Mapping[str, Sequence[Number]], unit: str,
          stacked: bool) -> Markup:
    _check(labels, series)
    names = list(series)
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    fmt = _formatter([v for vs in series.values() for v in vs])
    peak = max(_stack_totals(labels, series)) if stacked else max(float(v) for vs in series.values() for v in vs)
    ymax, step = _nice_scale(peak, integral=_all_integral(series))
    ticks = [i * step for i in range(round(ymax / step) + 1)]
    tick_fmt = _tick_formatter(step)
    left = PAD + TEXT_SIZE + 8 + max(_width(tick_fmt(t), SMALL_SIZE) for t in ticks) + 6
    plot_width = WIDTH - left - PAD
    slot = plot_width / len(labels)
    on_top = ([fmt(t) for t in _stack_totals(labels, series)] if stacked
              else [fmt(v) for vs in series.values() for v in vs])
    widest = max(_width(t, SMALL_SIZE) for t in on_top)
    upright = widest <= slot / (1 if stacked else len(names)) - 2  # else written upwards
    headroom = SMALL_SIZE + 6 if upright else widest + 8

    body, y = _header(title, names if len(names) > 1 else [], colours)
    frame = _Frame(left=left, top=y + headroom, width=plot_width, ymax=ymax, slots=len(labels))
    body += _y_axis(frame, ticks, tick_fmt, unit)
    body += (_stacks(frame, labels, series, colours, fmt, upright) if stacked
             else _groups(frame, labels, series, colours, fmt, upright))
    x_labels, label_height = _x_labels(frame, labels)
    body += x_labels
    height = frame.bottom + label_height + PAD
    return _svg(title, _describe(labels, series, unit, fmt, stacked), height, body)


def _header(title: str, legend: list[str], colours: Mapping[str, str]) -> tuple[list[str], float]:
    """The title (two lines, Chinese then English, when one is too wide) and the legend; returns the y below."""
    parts: list[str] = []
    y: float = PAD + TITLE_SIZE
    for line in _title_lines(title):
        parts.append(_text(PAD, y, line, TITLE_SIZE, weight="bold"))
        y += TITLE_SIZE * 1.3
    x: float = PAD
    y += 4
    for name in legend:
        item = 12 + 4 + _width(name, SMALL_SIZE) + 14
        if x > PAD and x + item > WIDTH - PAD:
            x, y = PAD, y + SMALL_SIZE + 8
        parts.append(f'<rect x="{x:.2f}" y="{y - 10:.2f}" width="12" height="12" fill="{colours[name]}"/>')
        parts.append(_text(x + 16, y, name, SMALL_SIZE))
        x += item
    return parts, y + (SMALL_SIZE + 6 if legend else 0)


def _y_axis(frame: _Frame, ticks: list[float], fmt: Callable[[float], str], unit: str) -> list[str]:
    """Grid lines with their values, the baseline, and the unit written up the left side."""
    parts = []
    right = frame.left + frame.width
    for t in ticks:
        y = frame.bottom - frame.height_of(t)
        parts.append(f'<line x1="{frame.left:.2f}" y1="{y:.2f}" x2="{right:.2f}" y2="{y:.2f}" '
                     f'stroke="currentColor" stroke-opacity="{0.6 if t == 0 else 0.15}"/>')
        parts.append(_text(frame.left - 6, y + 4, fmt(t), SMALL_SIZE, anchor="end"))
    middle = frame.top + PLOT_HEIGHT / 2
    parts.append(_text(PAD + TEXT_SIZE, middle, unit, TEXT_SIZE, anchor="middle",
                       transform=f"rotate(-90 {PAD + TEXT_SIZE} {middle:.2f})"))
    return parts


def _groups(frame: _Frame, labels: Sequence[str], series: Mapping[str, Sequence[Number]],
            colours: Mapping[str, str], fmt: Callable[[Number], str], upright: bool) -> list[str]:
    parts = []
    bar_width = frame.slot * 0.7 / len(series)
    for i, label in enumerate(labels):
        x = frame.left + i * frame.slot + frame.slot * 0.15
        for name, values in series.items():
            h = frame.height_of(float(values[i]))
            tip = f"{label} · {name}: {fmt(values[i])}" if len(series) > 1 else f"{label}: {fmt(values[i])}"
            parts.append(_bar(x, frame.bottom - h, bar_width, h, colours[name], label, name, values[i], tip))
            parts.append(_value_label(x + bar_width / 2, frame.bottom - h - 4, fmt(values[i]), upright))
            x += bar_width
    return parts


def _stacks(frame: _Frame, labels: Sequence[str], series: Mapping[str, Sequence[Number]],
            colours: Mapping[str, str], fmt: Callable[[Number], str], upright: bool) -> list[str]:
    parts = []
    bar_width = frame.slot * 0.7
    for i, label in enumerate(labels):
        x, y = frame.left + i * frame.slot + frame.slot * 0.15, frame.bottom
        for name, values in series.items():
            h = frame.height_of(float(values[i]))
            y -= h
            parts.append(_bar(x, y, bar_width, h, colours[name], label, name, values[i],
                              f"{label} · {name}: {fmt(values[i])}"))
            text = fmt(values[i])
            if float(values[i]) > 0 and h >= SMALL_SIZE + 4 and _width(text, SMALL_SIZE) <= bar_width - 4:
                colour = "#ffffff" if colours[name] in DARK else "#000000"
                parts.append(_text(x + bar_width / 2, y + h / 2 + 4, text, SMALL_SIZE, anchor="middle",
                                   fill=colour))
        total = sum(float(values[i]) for values in series.values())
        parts.append(_value_label(x + bar_width / 2, y - 4, fmt(total), upright))
    return parts


def _x_labels(frame: _Frame, labels: Sequence[str]) -> tuple[list[str], float]:
    """The labels under the bars, slanted when they do not fit side by side; returns them and their height."""
    widest = max(_width(label, TEXT_SIZE) for label in labels)
    slanted = widest > frame.slot - 4
    parts = []
    for i, label in enumerate(labels):
        x, y = frame.left + (i + 0.5) * frame.slot, frame.bottom + TEXT_SIZE + 4
        if slanted:
            parts.append(_text(x, y, label, TEXT_SIZE, anchor="end",
                               transform=f"rotate(-{X_LABEL_ANGLE} {x:.2f} {y:.2f})"))
        else:
            parts.append(_text(x, y, label, TEXT_SIZE, anchor="middle"))
    height = widest * math.sin(math.radians(X_LABEL_ANGLE)) + TEXT_SIZE + 8 if slanted else TEXT_SIZE + 8
    return parts, height


# ---------------------------------------------------------------- pieces

def _svg(title: str, desc: str, height: float, body: list[str]) -> Markup:
    t = escape(title)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {math.ceil(height)}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{t}" font-family="{FONT}" '
        f'style="max-width:40rem;height:auto">'
        f"<title>{t}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg>")


def _text(x: float, y: float, text: str, size: int, anchor: str = "start", weight: str = "normal",
          fill: str = "currentColor", opacity: float = 1.0, transform: str = "") -> str:
    extra = (f' font-weight="{weight}"' if weight != "normal" else "") + (
        f' opacity="{opacity}"' if opacity != 1.0 else "") + (f' transform="{transform}"' if transform else "")
    return (f'<text x="{x:.2f}" y="{y:.2f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{extra}>'
            f"{escape(text)}</text>")


def _bar(x: float, y: float, width: float, height: float, colour: str, label: str, name: str, value: Number,
         tip: str) -> str:
    return (f'<rect class="bar" x="{x:.2f}" y="{y:.2f}" width="{width:.2f}" height="{height:.2f}" '
            f'fill="{colour}" data-label="{escape(label)}" data-series="{escape(name)}" data-value="{escape(str(value))}">'
            f"<title>{escape(tip)}</title></rect>")


def _value_label(x: float, y: float, text: str, upright: bool) -> str:
    if upright:
        return _text(x, y, text, SMALL_SIZE, anchor="middle")
    return _text(x + 4, y, text, SMALL_SIZE, transform=f"rotate(-90 {x + 4:.2f} {y:.2f})")


def _describe(labels: Sequence[str], series: Mapping[str, Sequence[Number]], unit: str,
              fmt: Callable[[Number], str], stacked: bool) -> str:
    """Every value in words, for screen readers."""
    items = []
    for i, label in enumerate(labels):
        parts = [f"{name} {fmt(values[i])}" for name, values in series.items()]
        if stacked:
            parts.append(f"合计 / total {fmt(sum(float(v[i]) for v in series.values()))}")
        items.append(f"{label}: " + (", ".join(parts) if len(series) > 1 else fmt(next(iter(series.values()))[i])))
    return f"{unit}. " + "; ".join(items)


# ---------------------------------------------------------------- numbers and text

def _no_data(labels: Sequence[str], series: Mapping[str, Sequence[Number]]) -> bool:
    return not labels or not series or all(len(vs) == 0 for vs in series.values())


def _check(labels: Sequence[str], series: Mapping[str, Sequence[Number]]) -> None:
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
        if any(float(v) < 0 or math.isnan(float(v)) for v in values):
            raise ValueError(f"series {name!r}: values must be numbers ≥ 0")


def _stack_totals(labels: Sequence[str], series: Mapping[str, Sequence[Number]]) -> list[float]:
    return [sum(float(vs[i]) for vs in series.values()) for i in range(len(labels))]


def _all_integral(series: Mapping[str, Sequence[Number]]) -> bool:
    return all(float(v).is_integer() for vs in series.values() for v in vs)


def _formatter(values: Sequence[Number]) -> Callable[[Number], str]:
    """Whole numbers with thousands separators, or every value with two decimals (yuan and fen)."""
    if all(float(v).is_integer() for v in values):
        return lambda v: f"{round(float(v)):,}"
    return lambda v: f"{Decimal(str(v)):,.2f}"


def _tick_formatter(step: float) -> Callable[[float], str]:
    decimals = 0 if float(step).is_integer() else 2
    return lambda t: f"{t:,.{decimals}f}"


def _nice_scale(peak: float, integral: bool) -> tuple[float, float]:
    """The top of the y axis and the step between grid lines: 1, 2, 2.5 or 5 times a power of ten, about
    four steps, never below 1 for whole numbers (counts)."""
    if peak <= 0:
        return 1.0, 1.0
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integral:
        step = max(1.0, float(math.ceil(step)))
    return step * math.ceil(peak / step - 1e-9), step


def _width(text: str, size: float) -> float:
    """About how wide `text` is drawn: CJK characters a full em, others about 0.6 em."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def _title_lines(title: str) -> list[str]:
    if _width(title, TITLE_SIZE) <= WIDTH - 2 * PAD or " / " not in title:
        return [title]
    chinese, english = title.split(" / ", 1)
    return [chinese, english]
