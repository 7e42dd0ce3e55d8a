"""Inline SVG charts, drawn in Python so the report needs no JavaScript library and opens from file://.

Every text that reaches the SVG goes through ``escape``; each chart returns ``Markup`` so the template's autoescape
leaves the (already safe) SVG alone. Hover titles carry the exact numbers behind each mark.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup, escape

from .format import is_number, num, signed

BASE_COLOR = "#6b7280"
CANDIDATE_COLOR = "#2563eb"
UP_COLOR = "#15803d"
DOWN_COLOR = "#b91c1c"
TIE_COLOR = "#9ca3af"
STATUS_COLORS = {"pass": "#15803d", "fail": "#b91c1c", "inconclusive": "#b45309", "error": "#7c3aed"}
# distinct, colour-blind-friendly colours for several runs side by side (Okabe-Ito without yellow)
RUN_COLORS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
FONT = 'font-family="ui-sans-serif,system-ui,sans-serif" font-size="10"'


def _f(x: float) -> str:
    return f"{x:.1f}"


def nice_step(span: float, target: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``target`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def nice_range(lo: float, hi: float, target: int = 4, clamp: tuple[float, float] | None = None):
    """(lo, hi, ticks) rounded outwards to the tick step; a flat range is widened a little."""
    if hi - lo < 1e-9:
        pad = max(abs(hi) * 0.05, 0.01)
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, target)
    lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    if clamp:
        lo, hi = max(lo, clamp[0]), min(hi, clamp[1])
    ticks, t = [], lo
    while t <= hi + step * 1e-6:
        ticks.append(round(t, 10))
        t += step
    return lo, hi, ticks


def _tick_label(v: float, step: float) -> str:
    digits = next((d for d in range(5) if abs(round(step, d) - step) < 1e-9), 4)  # as many as the step needs
    return f"{v:.{digits}f}".replace("-", "\u2212")


def _signed_tick(v: float, step: float) -> str:
    if v == 0:
        return "0"
    return ("\u2212" if v < 0 else "+") + _tick_label(abs(v), step)


@dataclass
class Box:
    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


class XScale:
    """Cut-offs on a log axis when they span a factor of 5 or more (1..100), else linear."""

    def __init__(self, ks: Sequence[int], box: Box):
        self.ks, self.box = list(ks), box
        self.log = len(ks) > 1 and min(ks) > 0 and max(ks) / min(ks) >= 5
        vals = [self._t(k) for k in ks]
        self.lo, self.hi = min(vals), max(vals)

    def _t(self, k: float) -> float:
        return math.log(k) if self.log else float(k)

    def __call__(self, k: float) -> float:
        if self.hi == self.lo:
            return self.box.left + self.box.width / 2
        pad = 0.04 * self.box.width
        return self.box.left + pad + (self._t(k) - self.lo) / (self.hi - self.lo) * (self.box.width - 2 * pad)


class YScale:
    def __init__(self, lo: float, hi: float, box: Box):
        self.lo, self.hi, self.box = lo, hi, box

    def __call__(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)  # an interval band may reach past the axis (e.g. above 1): clip it
        return self.box.bottom - (v - self.lo) / (self.hi - self.lo) * self.box.height


def _y_axis(ys: YScale, ticks: list[float], box: Box) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    out = []
    for t in ticks:
        y = _f(ys(t))
        out.append(f'<line x1="{_f(box.left)}" x2="{_f(box.right)}" y1="{y}" y2="{y}" class="grid"/>')
        out.append(f'<text x="{_f(box.left - 4)}" y="{y}" text-anchor="end" dominant-baseline="middle">'
                   f'{_tick_label(t, step)}</text>')
    return "".join(out)


def _x_axis(xs: XScale, box: Box, labels: bool = True) -> str:
    out = [f'<line x1="{_f(box.left)}" x2="{_f(box.right)}" y1="{_f(box.bottom)}" y2="{_f(box.bottom)}" '
           f'class="axis"/>']
    if labels:
        last = -1e9
        for k in xs.ks:
            x = xs(k)
            if x - last < 16:  # keep labels from overlapping when cut-offs crowd
                continue
            last = x
            out.append(f'<text x="{_f(x)}" y="{_f(box.bottom + 12)}" text-anchor="middle">@{k}</text>')
    return "".join(out)


def _polyline(points: list[tuple[float, float]], color: str, dash: bool = False, width: float = 1.8) -> str:
    if len(points) < 2:
        return ""
    pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in points)
    style = ' stroke-dasharray="4 3"' if dash else ""
    return f'<path d="M{pts.replace(" ", " L")}" fill="none" stroke="{color}" stroke-width="{width}"{style}/>'


def _band(upper: list[tuple[float, float]], lower: list[tuple[float, float]], color: str) -> str:
    if len(upper) < 2:
        return ""
    pts = upper + list(reversed(lower))
    d = "M" + " L".join(f"{_f(x)},{_f(y)}" for x, y in pts) + " Z"
    return f'<path d="{d}" fill="{color}" fill-opacity="0.16" stroke="none" class="band"/>'


def _svg(width: int, height: int, body: str, label: str, css_class: str = "chart") -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" viewBox="0 0 {width} {height}" '
                  f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" {FONT}>{body}</svg>')


@dataclass
class Series:
    label: str
    values: list[float | None]
    color: str
    dash: bool = False


def curve_chart(family: str, ks: list[int], base: list[float | None], candidate: list[float | None],
                ci: list[tuple[float, float] | None], confidence_label: str = "95% CI") -> Markup:
    """metric@k for base and candidate (top panel; the band is base + the paired CI of the difference, i.e. where
    the candidate's mean lies relative to base) and the difference with its CI (bottom panel, zero line)."""
    width, height = 380, 306
    top = Box(46, 24, 322, 146)
    bottom = Box(46, 206, 322, 76)
    xs = XScale(ks, top)
    xs_b = XScale(ks, bottom)
    lo_vals = [v for v in base + candidate if is_number(v)]
    band_lo = [(b + c[0]) if is_number(b) and c else None for b, c in zip(base, ci)]
    band_hi = [(b + c[1]) if is_number(b) and c else None for b, c in zip(base, ci)]
    lo_vals += [v for v in band_lo + band_hi if is_number(v)]
    if not lo_vals:
        return _svg(width, 60, f'<text x="10" y="30">no {escape(family)} values in this result</text>',
                    f"{family}: no data")
    y_lo, y_hi, ticks = nice_range(min(lo_vals), max(lo_vals), clamp=(0.0, 1.0))
    ys = YScale(y_lo, y_hi, top)
    body = [f'<text x="{_f(top.left)}" y="12" class="title">{escape(family)}@k</text>',
            _legend(top.right, 12, [("base", BASE_COLOR, False), ("candidate", CANDIDATE_COLOR, False),
                                    (f"{confidence_label} of \u0394", CANDIDATE_COLOR, True)]),
            _y_axis(ys, ticks, top), _x_axis(xs, top, labels=False)]
    upper = [(xs(k), ys(v)) for k, v in zip(ks, band_hi) if is_number(v)]
    lower = [(xs(k), ys(v)) for k, v in zip(ks, band_lo) if is_number(v)]
    body.append(_band(upper, lower, CANDIDATE_COLOR))
    for label, values, color in (("base", base, BASE_COLOR), ("candidate", candidate, CANDIDATE_COLOR)):
        pts = [(k, v) for k, v in zip(ks, values) if is_number(v)]
        body.append(_polyline([(xs(k), ys(v)) for k, v in pts], color))
        for k, v in pts:
            body.append(f'<circle cx="{_f(xs(k))}" cy="{_f(ys(v))}" r="2.6" fill="{color}">'
                        f'<title>{escape(label)} {escape(family)}@{k} = {num(v)}</title></circle>')
    # difference panel
    diffs = [(c - b) if is_number(b) and is_number(c) else None for b, c in zip(base, candidate)]
    d_vals = [0.0] + [v for v in diffs if is_number(v)] + [x for c in ci if c for x in c]
    d_lo, d_hi, d_ticks = nice_range(min(d_vals), max(d_vals), target=3)
    yd = YScale(d_lo, d_hi, bottom)
    body += [f'<text x="{_f(bottom.left)}" y="{_f(bottom.top - 12)}" class="subtitle">'
             f'\u0394 candidate \u2212 base, {escape(confidence_label)}</text>',
             _y_axis(yd, d_ticks, bottom), _x_axis(xs_b, bottom),
             f'<line x1="{_f(bottom.left)}" x2="{_f(bottom.right)}" y1="{_f(yd(0))}" y2="{_f(yd(0))}" class="zero"/>']
    upper = [(xs_b(k), yd(c[1])) for k, c in zip(ks, ci) if c]
    lower = [(xs_b(k), yd(c[0])) for k, c in zip(ks, ci) if c]
    body.append(_band(upper, lower, CANDIDATE_COLOR))
    pts = [(k, d, c) for k, d, c in zip(ks, diffs, ci) if is_number(d)]
    body.append(_polyline([(xs_b(k), yd(d)) for k, d, _ in pts], CANDIDATE_COLOR, width=1.4))
    for k, d, c in pts:
        significant = bool(c) and (c[0] > 0 or c[1] < 0)
        color = (UP_COLOR if d > 0 else DOWN_COLOR) if significant else CANDIDATE_COLOR
        fill = color if significant else "#fff"
        ci_text = f", {confidence_label} [{signed(c[0])}, {signed(c[1])}]" if c else ""
        body.append(f'<circle cx="{_f(xs_b(k))}" cy="{_f(yd(d))}" r="2.8" fill="{fill}" stroke="{color}" '
                    f'stroke-width="1.3"><title>\u0394 {escape(family)}@{k} = {signed(d)}{escape(ci_text)}'
                    f'{" (interval excludes 0)" if significant else ""}</title></circle>')
    return _svg(width, height, "".join(body), f"{family} at each cut-off, base and candidate, with the difference")


def runs_chart(family: str, ks: list[int], base: list[float | None], runs: list[Series]) -> Markup:
    """metric@k of several candidates over one base (dashed), for the side-by-side comparison of runs."""
    return lines_chart(family, ks, [Series("base (first run)", base, BASE_COLOR, True)] + runs,
                       f"{family} at each cut-off for each run")


def systems_chart(family: str, ks: list[int], systems: list[Series]) -> Markup:
    """metric@k of every system scored on a data set (base, candidate and the references), one line each."""
    return lines_chart(family, ks, systems, f"{family} at each cut-off for each system")


def lines_chart(family: str, ks: list[int], series: list[Series], label: str) -> Markup:
    """One line per series over the cut-offs; each point's hover title names its series and value."""
    width, height = 380, 200
    box = Box(46, 24, 322, 150)
    xs = XScale(ks, box)
    vals = [v for s in series for v in s.values if is_number(v)]
    if not vals:
        return _svg(width, 60, f'<text x="10" y="30">no {escape(family)} values</text>', f"{family}: no data")
    y_lo, y_hi, ticks = nice_range(min(vals), max(vals), clamp=(0.0, 1.0))
    ys = YScale(y_lo, y_hi, box)
    body = [f'<text x="{_f(box.left)}" y="12" class="title">{escape(family)}@k</text>', _y_axis(ys, ticks, box),
            _x_axis(xs, box)]
    for s in series:
        pts = [(k, v) for k, v in zip(ks, s.values) if is_number(v)]
        body.append(_polyline([(xs(k), ys(v)) for k, v in pts], s.color, dash=s.dash))
        for k, v in pts:
            body.append(f'<circle cx="{_f(xs(k))}" cy="{_f(ys(v))}" r="2.4" fill="{s.color}">'
                        f'<title>{escape(s.label)}: {escape(family)}@{k} = {num(v)}</title></circle>')
    return _svg(width, height, "".join(body), label)


def _legend(right: float, y: float, items: list[tuple[str, str, bool]]) -> str:
    out, x = [], right
    for label, color, band in reversed(items):
        w = 6 * len(label) + 16
        x -= w
        if band:
            out.append(f'<rect x="{_f(x)}" y="{_f(y - 6)}" width="10" height="8" fill="{color}" fill-opacity="0.16"/>')
        else:
            out.append(f'<line x1="{_f(x)}" x2="{_f(x + 10)}" y1="{_f(y - 2)}" y2="{_f(y - 2)}" stroke="{color}" '
                       f'stroke-width="2"/>')
        out.append(f'<text x="{_f(x + 13)}" y="{_f(y + 1)}">{escape(label)}</text>')
    return "".join(out)


@dataclass
class Histogram:
    edges: list[float]  # the bin edges of each side, from 0 outwards: 0, w, 2w, ...
    negative: list[int]  # counts per bin, nearest to zero first
    positive: list[int]
    ties: int

    @property
    def total(self) -> int:
        return sum(self.negative) + sum(self.positive) + self.ties


def bin_differences(diffs: Sequence[float], bins_per_side: int = 10) -> Histogram:
    """Bins symmetric around zero; exact ties (often most queries) get their own bar so they cannot hide a side."""
    nonzero = [abs(d) for d in diffs if d != 0]
    top = max(nonzero) if nonzero else 1.0
    width = nice_step(top, bins_per_side)
    n = max(1, math.ceil(top / width - 1e-9))
    neg, pos, ties = [0] * n, [0] * n, 0
    for d in diffs:
        if d == 0:
            ties += 1
            continue
        i = min(n - 1, max(0, math.ceil(abs(d) / width - 1e-9) - 1))
        (pos if d > 0 else neg)[i] += 1
    return Histogram([round(i * width, 10) for i in range(n + 1)], neg, pos, ties)


def difference_histogram(diffs: Sequence[float], metric: str, mean: float | None = None) -> Markup:
    """Distribution of per-query differences (candidate - base): losses red, gains green, ties grey."""
    width, height = 380, 180
    box = Box(40, 26, 318, 122)
    h = bin_differences(diffs)
    n = len(h.negative)
    slots = 2 * n + 1
    slot_w = box.width / slots
    peak = max([h.ties, *h.negative, *h.positive, 1])
    _, y_hi, ticks = nice_range(0, peak, target=3)
    ys = YScale(0, y_hi, box)
    body = [f'<text x="{_f(box.left)}" y="12" class="title">per-query \u0394 {escape(metric)}</text>',
            f'<text x="{_f(box.right)}" y="12" text-anchor="end" class="subtitle">'
            f'{sum(h.negative)} down \u00b7 {h.ties} tied \u00b7 {sum(h.positive)} up</text>',
            _y_axis(ys, [t for t in ticks if float(t).is_integer()] or [0], box)]

    def bar(slot: int, count: int, color: str, label: str) -> str:
        x = box.left + slot * slot_w + 0.6
        y = ys(count)
        return (f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(slot_w - 1.2)}" height="{_f(box.bottom - y)}" '
                f'fill="{color}"><title>{escape(label)}: {count} quer{"y" if count == 1 else "ies"}</title></rect>')

    for i, count in enumerate(h.negative):
        lo, hi = h.edges[i], h.edges[i + 1]
        body.append(bar(n - 1 - i, count, DOWN_COLOR, f"\u0394 from {signed(-hi, 3)} to {signed(-lo, 3)}"))
    body.append(bar(n, h.ties, TIE_COLOR, "\u0394 exactly 0 (tied)"))
    for i, count in enumerate(h.positive):
        lo, hi = h.edges[i], h.edges[i + 1]
        body.append(bar(n + 1 + i, count, UP_COLOR, f"\u0394 from {signed(lo, 3)} to {signed(hi, 3)}"))

    def x_of(v: float) -> float:  # value -> x on the slot layout (ties take the middle slot)
        centre = box.left + (n + 0.5) * slot_w
        span = h.edges[-1] or 1.0
        if v == 0:
            return centre
        side = 1 if v > 0 else -1
        return centre + side * (0.5 * slot_w + min(abs(v), span) / span * n * slot_w)

    body.append(f'<line x1="{_f(box.left)}" x2="{_f(box.right)}" y1="{_f(box.bottom)}" y2="{_f(box.bottom)}" '
                f'class="axis"/>')
    top_edge = h.edges[-1]
    step = nice_step(top_edge, 2)
    ticks = [0.0] + [t * step for t in range(1, int(top_edge / step + 1e-9) + 1)]
    for v in sorted({-t for t in ticks} | set(ticks)):
        body.append(f'<line x1="{_f(x_of(v))}" x2="{_f(x_of(v))}" y1="{_f(box.bottom)}" y2="{_f(box.bottom + 3)}" '
                    f'class="axis"/><text x="{_f(x_of(v))}" y="{_f(box.bottom + 13)}" text-anchor="middle">'
                    f'{_signed_tick(v, step)}</text>')
    if is_number(mean):
        x = x_of(mean)
        body.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(box.top - 4)}" y2="{_f(box.bottom)}" class="mean">'
                    f'<title>mean \u0394 = {signed(mean)}</title></line>'
                    f'<text x="{_f(x)}" y="{_f(box.bottom + 26)}" text-anchor="middle" class="subtitle">'
                    f'mean {signed(mean)}</text>')
    return _svg(width, height, "".join(body), f"histogram of per-query differences in {metric}")


def strip_domain(points: Sequence[float]) -> tuple[float, float]:
    """One scale for every gate's strip (all are differences of a metric in [0, 1]), so widths compare."""
    lo, hi = min([0.0, *points]), max([0.0, *points])
    pad = (hi - lo) * 0.08 or 0.01
    return lo - pad, hi + pad


STRIP_WIDTH, STRIP_HEIGHT = 180, 42


def strip_ticks(domain: tuple[float, float]) -> tuple[float, list[float]]:
    """The tick step and ticks of the strips' shared axis: round multiples of the step inside the domain (0 among
    them, as every domain holds 0)."""
    lo, hi = domain
    step = nice_step(hi - lo, 5)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return step, [round(i * step, 10) for i in range(first, last + 1)]


def ci_strip(difference: float | None, ci: Sequence[float] | None, status: str, *,
             reference: float | None = None, reference_label: str = "",
             domain: tuple[float, float] | None = None, sides: str = "candidate \u2212 base") -> Markup:
    """A one-line forest plot of a gate on an axis of the difference: the CI (the bar), its mean (the circle), zero
    (dotted) and the gate's bar (the required gain or the margin, amber and labelled), with tick labels. ``sides``
    names what was subtracted from what (a gate may judge a hybrid against bm25, not the candidate against base)."""
    width, height = STRIP_WIDTH, STRIP_HEIGHT
    if not (is_number(difference) and ci and all(is_number(v) for v in ci)):
        return Markup("")
    lo, hi = domain or strip_domain([difference, *ci] + ([reference] if is_number(reference) else []))
    pad, bar_y, axis_y, label_y = 11, 17, 27, 38

    def x(v: float) -> float:
        return pad + (min(max(v, lo), hi) - lo) / (hi - lo) * (width - 2 * pad)

    color = STATUS_COLORS.get(status, BASE_COLOR)
    step, ticks = strip_ticks((lo, hi))
    body = [f'<line x1="{_f(x(lo))}" x2="{_f(x(hi))}" y1="{axis_y}" y2="{axis_y}" class="axis"/>']
    placed: list[float] = []
    for t in ticks:  # tick marks everywhere
        body.append(f'<line x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{axis_y}" y2="{axis_y + 3}" class="axis"/>')
    for t in sorted(ticks, key=abs):  # labels where they do not crowd, 0 first
        if any(abs(x(t) - p) < 30 for p in placed):
            continue
        placed.append(x(t))
        text = _signed_tick(t, step)
        half = 2.4 * len(text)  # about half the label's width at 8.5px: an edge label is kept inside the strip
        tx, anchor = (width - 1, "end") if x(t) + half > width else (1, "start") if x(t) - half < 0 else \
            (x(t), "middle")
        body.append(f'<text x="{_f(tx)}" y="{label_y}" text-anchor="{anchor}" class="tick">{text}</text>')
    body.append(f'<line x1="{_f(x(0))}" x2="{_f(x(0))}" y1="3" y2="{axis_y}" class="zero"><title>0: no '
                f'difference</title></line>')
    if is_number(reference):
        rx = x(reference)
        label = f"{reference_label} {signed(reference, 3)}".strip()
        w = 5.3 * len(label)  # about the width of the label (8.5px, semi-bold): it must stay inside the strip
        anchor = "start" if rx + 2 + w <= width or rx < width / 2 else "end"
        if anchor == "end" and rx - 2 - w < 0:
            anchor = "start"
        body.append(f'<line x1="{_f(rx)}" x2="{_f(rx)}" y1="3" y2="{axis_y}" class="threshold">'
                    f'<title>{escape(reference_label)} {signed(reference)}</title></line>'
                    f'<path d="M{_f(rx - 3)},{axis_y + 4} L{_f(rx + 3)},{axis_y + 4} L{_f(rx)},{axis_y} Z" '
                    f'class="ref-mark"/>'
                    f'<text x="{_f(min(rx + 2, width - w) if anchor == "start" else rx - 2)}" y="8" '
                    f'text-anchor="{anchor}" class="ref-label">{escape(label)}</text>')
    body.append(f'<line x1="{_f(x(ci[0]))}" x2="{_f(x(ci[1]))}" y1="{bar_y}" y2="{bar_y}" stroke="{color}" '
                f'stroke-width="3" stroke-linecap="round"/>')
    body.append(f'<circle cx="{_f(x(difference))}" cy="{bar_y}" r="3.6" fill="#fff" stroke="{color}" '
                f'stroke-width="2"><title>\u0394 {escape(sides)} {signed(difference)}, CI [{signed(ci[0])}, '
                f'{signed(ci[1])}]</title></circle>')
    return _svg(width, height, "".join(body), f"difference {sides} {signed(difference)} with interval", "strip")


PRECISION_COLORS = {"float32": CANDIDATE_COLOR, "float16": "#0891b2", "int8": "#d55e00", "uint8": "#e69f00",
                    "binary": "#cc79a7", "ubinary": "#7c3aed"}


@dataclass
class VariantPoint:
    dims: float
    mean: float | None
    band: tuple[float, float] | None  # where the variant's mean lies with the CI of its paired difference
    title: str


@dataclass
class VariantSeries:
    label: str
    color: str
    dash: bool
    points: list[VariantPoint]


def variants_chart(metric: str, series: list[VariantSeries], base_mean: float | None,
                   confidence_label: str = "95% CI") -> Markup:
    """The primary metric against the dimensions kept, one line per precision (a system's own variants; a base's
    dashed), each point's error bar the paired interval of its difference against the system it derives from
    (drawn around that system's mean, as the curves draw the candidate's band around base). The base's own mean is
    the grey dotted line."""
    width = 420
    box = Box(48, 34, 352, 170)
    dims = sorted({p.dims for s in series for p in s.points if is_number(p.dims)})
    vals = [v for s in series for p in s.points for v in ([p.mean] + list(p.band or ())) if is_number(v)]
    if is_number(base_mean):
        vals.append(base_mean)
    if not dims or not vals:
        return _svg(width, 60, f'<text x="10" y="30">no variant of {escape(metric)} to draw</text>',
                    f"{metric}: no variants")
    use_log = len(dims) > 1 and dims[0] > 0 and dims[-1] / dims[0] >= 4
    t = (lambda d: math.log2(d)) if use_log else float
    t_lo, t_hi = t(dims[0]), t(dims[-1])
    inner = 0.06 * box.width

    def xs(d: float) -> float:
        if t_hi == t_lo:
            return box.left + box.width / 2
        return box.left + inner + (t(d) - t_lo) / (t_hi - t_lo) * (box.width - 2 * inner)

    y_lo, y_hi, ticks = nice_range(min(vals), max(vals), clamp=(0.0, 1.0))
    ys = YScale(y_lo, y_hi, box)
    body = [f'<text x="{_f(box.left)}" y="12" class="title">{escape(metric)} against dimensions, per '
            f'precision</text>',
            f'<text x="{_f(box.left)}" y="25" class="subtitle">bars: {escape(confidence_label)} of each variant\u2019s '
            f'\u0394 against the system it derives from</text>',
            _y_axis(ys, ticks, box),
            f'<line x1="{_f(box.left)}" x2="{_f(box.right)}" y1="{_f(box.bottom)}" y2="{_f(box.bottom)}" '
            f'class="axis"/>']
    last = -1e9
    for d in dims:
        x = xs(d)
        body.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(box.bottom)}" y2="{_f(box.bottom + 3)}" class="axis"/>')
        if x - last >= 22:
            last = x
            body.append(f'<text x="{_f(x)}" y="{_f(box.bottom + 13)}" text-anchor="middle" class="tick">'
                        f'{d:g}</text>')
    body.append(f'<text x="{_f(box.right)}" y="{_f(box.bottom + 26)}" text-anchor="end" class="subtitle">'
                f'dimensions{" (log scale)" if use_log else ""}</text>')
    if is_number(base_mean):
        y = ys(base_mean)
        body.append(f'<line x1="{_f(box.left)}" x2="{_f(box.right)}" y1="{_f(y)}" y2="{_f(y)}" class="base-line">'
                    f'<title>base {escape(metric)} = {num(base_mean)}</title></line>'
                    f'<text x="{_f(box.right - 2)}" y="{_f(y - 3)}" text-anchor="end" class="subtitle">base '
                    f'{num(base_mean)}</text>')
    for s in series:
        pts = sorted((p for p in s.points if is_number(p.dims) and is_number(p.mean)), key=lambda p: p.dims)
        body.append(_polyline([(xs(p.dims), ys(p.mean)) for p in pts], s.color, dash=s.dash, width=1.6))
        for p in pts:
            x = xs(p.dims)
            if p.band and all(is_number(v) for v in p.band):
                y0, y1 = ys(p.band[0]), ys(p.band[1])
                body.append(f'<path d="M{_f(x)},{_f(y0)} L{_f(x)},{_f(y1)} M{_f(x - 3)},{_f(y0)} L{_f(x + 3)},'
                            f'{_f(y0)} M{_f(x - 3)},{_f(y1)} L{_f(x + 3)},{_f(y1)}" stroke="{s.color}" '
                            f'stroke-width="1.2" fill="none" class="errbar"/>')
            body.append(f'<circle cx="{_f(x)}" cy="{_f(ys(p.mean))}" r="3" fill="{s.color if p.band else "#fff"}" '
                        f'stroke="{s.color}" stroke-width="1.4"><title>{escape(p.title)}</title></circle>')
    # the legend under the axis, left to right, wrapping: a line sample (dashed for a base's variants) and a name
    x, y = box.left, box.bottom + 42
    for s in series:
        w = 5.6 * len(s.label) + 30
        if x + w > width - 4 and x > box.left:
            x, y = box.left, y + 13
        dash = ' stroke-dasharray="4 3"' if s.dash else ""
        body.append(f'<line x1="{_f(x)}" x2="{_f(x + 16)}" y1="{_f(y - 3)}" y2="{_f(y - 3)}" stroke="{s.color}" '
                    f'stroke-width="2"{dash}/><text x="{_f(x + 20)}" y="{_f(y)}">{escape(s.label)}</text>')
        x += w
    return _svg(width, int(y + 8), "".join(body), f"{metric} against dimensions for each precision")


def trend_chart(points: list[tuple[str, float | None, str]], base: list[float | None], metric: str) -> Markup:
    """The main metric of earlier runs (dots coloured by verdict; the last is this run) over the base (dashed)."""
    width, height = 380, 120
    box = Box(46, 20, 322, 76)
    vals = [v for _, v, _ in points if is_number(v)] + [v for v in base if is_number(v)]
    if not vals:
        return Markup("")
    lo, hi, ticks = nice_range(min(vals), max(vals), target=2, clamp=(0.0, 1.0))
    ys = YScale(lo, hi, box)
    n = len(points)

    def x(i: int) -> float:
        return box.left + (box.width / 2 if n == 1 else 6 + i * (box.width - 12) / (n - 1))

    body = [f'<text x="{_f(box.left)}" y="11" class="title">candidate {escape(metric)}, run by run</text>',
            _legend(box.right, 11, [("base", BASE_COLOR, False), ("candidate", CANDIDATE_COLOR, False)]),
            _y_axis(ys, ticks, box),
            f'<line x1="{_f(box.left)}" x2="{_f(box.right)}" y1="{_f(box.bottom)}" y2="{_f(box.bottom)}" '
            f'class="axis"/>']
    body.append(_polyline([(x(i), ys(v)) for i, v in enumerate(base) if is_number(v)], BASE_COLOR, dash=True,
                          width=1.2))
    body.append(_polyline([(x(i), ys(v)) for i, (_, v, _) in enumerate(points) if is_number(v)], CANDIDATE_COLOR,
                          width=1.4))
    for i, (label, v, verdict) in enumerate(points):
        if not is_number(v):
            continue
        r = 4.2 if i == n - 1 else 3.0
        body.append(f'<circle cx="{_f(x(i))}" cy="{_f(ys(v))}" r="{r}" fill="{STATUS_COLORS.get(verdict, BASE_COLOR)}"'
                    f' stroke="#fff" stroke-width="1"><title>{escape(label)}: {num(v)} '
                    f'({escape(verdict.upper())})</title></circle>')
    if n:
        body.append(f'<text x="{_f(x(0))}" y="{_f(box.bottom + 13)}" text-anchor="start">'
                    f'{escape(points[0][0])}</text>')
    if n > 1:
        body.append(f'<text x="{_f(x(n - 1))}" y="{_f(box.bottom + 13)}" text-anchor="end">this run</text>')
    return _svg(width, height, "".join(body), f"trend of {metric} over earlier runs")
