"""A :class:`~ctloop.monitoring.report.Report` as one self-contained HTML page.

The page has inline CSS and inline SVG charts drawn here, no script and no external
resource, so it opens offline, in a mail attachment or a CI artifact viewer alike. Every
string that comes from the data (column names, categories, sources) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from ctloop.monitoring.report import Report, severity

__all__ = ["render_html"]

REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
DRIFT_COLOUR = "#d62728"
OK_COLOUR = "#2ca02c"
#: Metrics the performance chart draws, in order of preference (the first present wins).
CHART_METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall", "r2", "mae", "rmse")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#222;line-height:1.4}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#666;font-size:.9rem}
.verdict{font-size:1.2rem;padding:.6rem 1rem;border-radius:6px;display:inline-block}
.drift{background:#fde2e2;color:#8a1010}.nodrift{background:#e2f5e2;color:#135e13}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}
th,td{border-bottom:1px solid #eee;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.drifted td{background:#fff1f1}
.features{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;border:1px solid #eee;border-radius:6px;padding:.4rem}
figcaption{font-weight:600;font-size:.9rem}
svg text{font-family:inherit}
"""


def render_html(report: Report) -> str:
    """One self-contained HTML page for ``report``: summary, table and charts."""
    drift = report.dataset_drift
    title = "ctloop monitoring report"
    if report.deployment:
        title += f" — {report.deployment}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(_meta(report))}</p>',
        _summary(report),
        "<h2>Features</h2>",
        _feature_table(drift.get("columns", []), drift.get("skipped", {})),
        "<h2>Drift scores</h2>",
        '<p class="meta">Each bar is how far a column is from its threshold (1 = at the '
        "threshold): score ÷ threshold for distances, log p ÷ log threshold for tests.</p>",
        _scores_chart(drift.get("columns", [])),
    ]
    if report.prediction_drift:
        parts += ["<h2>Prediction drift</h2>", _feature_table([report.prediction_drift], {})]
    if report.label_drift:
        parts += ["<h2>Label drift (feedback)</h2>", _feature_table([report.label_drift], {})]
    if report.multivariate:
        parts.append(_multivariate(report.multivariate))
    if report.realised_performance or report.estimated_performance:
        parts += [
            "<h2>Performance over time</h2>",
            _performance_chart(
                report.realised_performance or [], report.estimated_performance or []
            ),
        ]
    if report.health:
        parts += ["<h2>Serving health</h2>", _health_table(report.health)]
    parts += ["<h2>Distributions</h2>", _histograms(report)]
    parts.append("</body></html>")
    return "\n".join(parts)


# --- text -----------------------------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}g}"
    return str(value)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f} %"


def _side(info: dict[str, Any]) -> str:
    text = f"{info.get('rows', '?')} rows"
    if info.get("source"):
        text = f"{info['source']} ({text})"
    if info.get("start"):
        text += f", {info['start']} to {info.get('end')}"
    return text


def _meta(report: Report) -> str:
    return (
        f"Report {report.id}, {report.created_at:%Y-%m-%d %H:%M:%S %Z}. "
        f"Reference: {_side(report.reference)}. Current: {_side(report.window)}."
    )


def _summary(report: Report) -> str:
    drift = report.dataset_drift
    tested = len(drift.get("columns", []))
    named = report.drifted_columns
    verdict = "Dataset drift detected" if report.drifted else "No dataset drift"
    css = "drift" if report.drifted else "nodrift"
    out = [
        f'<p class="verdict {css}">{verdict}: {len(named)} of {tested} columns drifted '
        f"({_pct(drift.get('drifted_share'))}; the threshold is "
        f"{_pct(drift.get('drift_share'))}).</p>"
    ]
    if named:
        items = "".join(f"<li>{escape(name)}</li>" for name in named)
        out.append(f"<p>Drifted columns, furthest past their threshold first:</p><ol>{items}</ol>")
    if report.prediction_drift:
        moved = "drifted" if report.prediction_drift.get("drifted") else "did not drift"
        out.append(f"<p>The predictions {moved}.</p>")
    if report.label_drift:
        moved = "drifted" if report.label_drift.get("drifted") else "did not drift"
        out.append(f"<p>The labels that arrived as feedback {moved}.</p>")
    return "\n".join(out)


def _feature_table(columns: Sequence[dict[str, Any]], skipped: dict[str, str]) -> str:
    head = (
        "<tr><th>column</th><th>kind</th><th>method</th><th>score</th><th>threshold</th>"
        "<th>p-value</th><th>missing ref / cur</th><th>inf ref / cur</th><th>drifted</th>"
        "<th>note</th></tr>"
    )
    rows = []
    for c in sorted(columns, key=lambda c: (not c.get("drifted"), -severity(c))):
        css = ' class="drifted"' if c.get("drifted") else ""
        cells = [
            c.get("column"),
            c.get("kind"),
            c.get("method"),
            _num(c.get("score")),
            _num(c.get("threshold")),
            _num(c.get("p_value")),
            f"{_pct(c.get('missing_share_reference'))} / {_pct(c.get('missing_share_current'))}",
            f"{_pct(c.get('infinite_share_reference'))} / {_pct(c.get('infinite_share_current'))}",
            "yes" if c.get("drifted") else "no",
            c.get("note") or "",
        ]
        rows.append(f"<tr{css}>" + "".join(f"<td>{escape(str(v))}</td>" for v in cells) + "</tr>")
    for name, why in skipped.items():
        rows.append(
            f'<tr><td>{escape(name)}</td><td colspan="9" style="text-align:left">'
            f"not tested: {escape(why)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _multivariate(m: dict[str, Any]) -> str:
    verdict = "drifted" if m.get("drifted") else "did not drift"
    top = ", ".join(escape(str(i["feature"])) for i in (m.get("importances") or [])[:5])
    return (
        "<h2>Multivariate drift</h2>"
        f"<p>A classifier told current rows from reference rows with ROC AUC "
        f"{_num(m.get('roc_auc'), 3)} ± {_num(m.get('roc_auc_std'), 2)} (threshold "
        f"{_num(m.get('threshold'), 3)}): the window as a whole {verdict}. "
        f"Features it relied on most: {top or '–'}.</p>"
    )


def _health_table(rows: Sequence[dict[str, Any]]) -> str:
    keys = ["start", "model_version", "variant", "requests", "error_rate"]
    keys += ["latency_p50_ms", "latency_p99_ms"]
    head = "<tr>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_num(r.get(k)))}</td>" for k in keys) + "</tr>" for r in rows
    )
    return f"<table>{head}{body}</table>"


# --- SVG ------------------------------------------------------------------------------------


def _svg(width: int, height: int, body: Sequence[str], label: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _text(
    x: float, y: float, text: str, size: int = 11, anchor: str = "start", **attrs: str
) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(text)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str = "") -> str:
    tip = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}">{tip}</rect>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = "#999", dash: str = "") -> str:
    style = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{style}/>'
    )


def _legend(x: float, y: float, entries: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for label, colour in entries:
        out += [_rect(x, y - 9, 10, 10, colour), _text(x + 14, y, label)]
        x += 20 + 7 * len(label)
    return out


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _bin_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    inner = [f"{a:.4g}–{b:.4g}" for a, b in zip(edges[:-1], edges[1:], strict=False)]
    return [f"< {edges[0]:.4g}", *inner, f"≥ {edges[-1]:.4g}"]


def _histogram_svg(hist: dict[str, Any]) -> str:
    """Reference and current shares side by side over the same bins or categories."""
    if hist["kind"] == "numeric":
        labels = _bin_labels(hist.get("edges", []))
    else:
        labels = [str(c) for c in hist.get("categories", [])]
    ref, cur = list(hist.get("reference", [])), list(hist.get("current", []))
    keep = [i for i in range(len(labels)) if ref[i] or cur[i]]  # drop empty outer bins
    labels = [labels[i] for i in keep]
    ref_s = [_shares(ref)[i] for i in keep]
    cur_s = [_shares(cur)[i] for i in keep]
    width, height, left, top, bottom = 520, 230, 40, 24, 60
    plot_w, plot_h = width - left - 10, height - top - bottom
    peak = max([*ref_s, *cur_s, 1e-9])
    body = _legend(left, 14, [("reference", REFERENCE_COLOUR), ("current", CURRENT_COLOUR)])
    body += [
        _line(left, top + plot_h, left + plot_w, top + plot_h),
        _text(left - 4, top + 8, f"{100 * peak:.0f} %", 10, "end"),
        _text(left - 4, top + plot_h, "0", 10, "end"),
    ]
    step = plot_w / max(len(labels), 1)
    bar = step * 0.4
    every = max(1, math.ceil(len(labels) / 12))
    for i, label in enumerate(labels):
        x = left + i * step + step * 0.1
        for j, (share, colour, side) in enumerate(
            ((ref_s[i], REFERENCE_COLOUR, "reference"), (cur_s[i], CURRENT_COLOUR, "current"))
        ):
            h = plot_h * share / peak
            tip = f"{label}: {side} {100 * share:.1f} %"
            body.append(_rect(x + j * bar, top + plot_h - h, bar, h, colour, tip))
        if i % every == 0:
            cx, cy = left + (i + 0.5) * step, top + plot_h + 10
            short = label if len(label) <= 18 else label[:17] + "…"
            body.append(_text(cx, cy, short, 9, "end", transform=f"rotate(-35 {cx:.1f} {cy:.1f})"))
    return _svg(width, height, body, f"histogram of {hist['column']}")


def _histograms(report: Report) -> str:
    results = {c["column"]: c for c in report.dataset_drift.get("columns", [])}
    ordered = sorted(
        report.histograms,
        key=lambda h: -severity(results.get(h["column"], {})),
    )
    figures = []
    for hist in ordered:
        result = results.get(hist["column"], {})
        mark = " — drifted" if result.get("drifted") else ""
        caption = f"{hist['column']} ({result.get('method', '')} {_num(result.get('score'))}){mark}"
        figures.append(
            f"<figure>{_histogram_svg(hist)}<figcaption>{escape(caption)}</figcaption></figure>"
        )
    return f'<div class="features">{"".join(figures)}</div>'


def _scores_chart(columns: Sequence[dict[str, Any]]) -> str:
    """A horizontal bar per column: its severity, with the threshold at 1."""
    if not columns:
        return "<p>No column was tested.</p>"
    rows = sorted(columns, key=lambda c: -severity(c))
    cap = 5.0
    width, row_h, left, top = 760, 20, 200, 20
    plot_w = width - left - 90
    height = top + row_h * len(rows) + 24
    scale = plot_w / cap
    body = [
        _line(left + scale, top - 6, left + scale, top + row_h * len(rows), DRIFT_COLOUR, "4 3"),
        _text(left + scale, top - 8, "threshold", 10, "middle"),
    ]
    for i, c in enumerate(rows):
        y = top + i * row_h
        value = severity(c)
        w = scale * min(value, cap)
        colour = DRIFT_COLOUR if c.get("drifted") else OK_COLOUR
        name = str(c.get("column"))
        short = name if len(name) <= 28 else name[:27] + "…"
        shown = f"{c.get('method')} {_num(c.get('score'))}"
        if c.get("p_value") is not None:
            shown += f", p {_num(c.get('p_value'), 3)}"
        body += [
            _text(left - 6, y + 13, short, 11, "end"),
            _rect(left, y + 3, w, row_h - 6, colour, f"{name}: {shown}"),
            _text(left + w + 4, y + 13, shown + (" ▸" if value > cap else ""), 10),
        ]
    return _svg(width, height, body, "drift score of each column against its threshold")


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _performance_chart(
    realised: Sequence[dict[str, Any]], estimated: Sequence[dict[str, Any]]
) -> str:
    """Realised metric per window as a line; estimated values with their band."""
    present = {m for w in realised for m in (w.get("metrics") or {})}
    present |= {m for e in estimated for m in (e.get("metrics") or {})}
    metric = next((m for m in CHART_METRICS if m in present), None)
    if metric is None:
        return "<p>No window had enough labels for a metric.</p>"
    real = [(_time(w.get("start")), (w.get("metrics") or {}).get(metric)) for w in realised]
    est = []
    for e in estimated:
        m = (e.get("metrics") or {}).get(metric) or {}
        est.append((_time(e.get("start")), m.get("value"), m.get("lower"), m.get("upper")))
    times = [t for t, *_ in [*real, *est]]
    if all(t is not None for t in times) and times:
        t0 = min(t for t in times if t is not None)
        span = max((t - t0).total_seconds() for t in times if t is not None) or 1.0

        def xpos(t: datetime | None, i: int) -> float:
            return 0.0 if t is None else (t - t0).total_seconds() / span
    else:
        count = max(len(real), len(est), 2) - 1

        def xpos(t: datetime | None, i: int) -> float:
            return i / count

    values = [v for _, v in real if v is not None]
    values += [v for _, *vs in est for v in vs if v is not None]
    if not values:
        return f"<p>No window had a value for {escape(metric)}.</p>"
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    width, height, left, top, bottom = 760, 240, 50, 24, 30
    plot_w, plot_h = width - left - 20, height - top - bottom

    def px(t: datetime | None, i: int) -> float:
        return left + 10 + (plot_w - 20) * xpos(t, i)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    body = _legend(left, 14, [("realised", REFERENCE_COLOUR), ("estimated", CURRENT_COLOUR)])
    body += [
        _line(left, top + plot_h, left + plot_w, top + plot_h),
        _line(left, top, left, top + plot_h),
        _text(left - 4, top + 8, f"{hi:.3g}", 10, "end"),
        _text(left - 4, top + plot_h, f"{lo:.3g}", 10, "end"),
        _text(left + plot_w, height - 6, metric, 11, "end"),
    ]
    band = sorted(
        (px(t, i), py(a), py(b))
        for i, (t, _, a, b) in enumerate(est)
        if a is not None and b is not None
    )
    if band:
        if len(band) == 1:
            x, a, b = band[0]
            body.append(_rect(x - 6, b, 12, a - b, CURRENT_COLOUR + "40", "estimated band"))
        else:
            outline = [f"{x:.1f},{b:.1f}" for x, _, b in band]
            outline += [f"{x:.1f},{a:.1f}" for x, a, _ in reversed(band)]
            body.append(
                f'<polygon points="{" ".join(outline)}" fill="{CURRENT_COLOUR}" '
                'fill-opacity="0.25" stroke="none"/>'
            )
    for series, colour in (
        (sorted((px(t, i), v) for i, (t, v) in enumerate(real) if v is not None), REFERENCE_COLOUR),
        (
            sorted((px(t, i), v) for i, (t, v, *_) in enumerate(est) if v is not None),
            CURRENT_COLOUR,
        ),
    ):
        if len(series) > 1:
            points = " ".join(f"{x:.1f},{py(v):.1f}" for x, v in series)
            body.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, v in series:
            body.append(
                f'<circle cx="{x:.1f}" cy="{py(v):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(metric)} {v:.4g}</title></circle>"
            )
    return _svg(width, height, body, f"{metric} over time")
