"""Validation and drift reports as HTML: in a notebook, and as one self-contained file."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

_RED, _GREEN, _GREY = "#c62828", "#2e7d32", "#666"


def _num(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def bars(plot: dict, title: str, width: int = 420) -> str:
    """Paired horizontal bars, reference (grey) against current (blue), per bin or category."""
    rows = []
    scale = max(max(plot["reference"], default=0), max(plot["current"], default=0)) or 1
    for label, ref, cur in zip(plot["labels"], plot["reference"], plot["current"]):
        rows.append(
            f"<tr><td style='font-size:11px;padding-right:6px;white-space:nowrap'>{escape(str(label))}</td><td>"
            f"<div style='background:#bbb;height:6px;width:{ref / scale * width:.0f}px'></div>"
            f"<div style='background:#1f77b4;height:6px;width:{cur / scale * width:.0f}px'></div></td>"
            f"<td style='font-size:11px;color:{_GREY}'>{ref:.1%} → {cur:.1%}</td></tr>")
    return (f"<div style='margin:6px 0'><b>{escape(title)}</b> <span style='font-size:11px;color:{_GREY}'>"
            "grey: reference, blue: current</span><table>" + "".join(rows) + "</table></div>")


def drift_html(report) -> str:
    colour = _RED if report.drifted else _GREEN
    head = (f"<div style='font-weight:600;color:{colour}'>drift {'detected' if report.drifted else 'not detected'}: "
            f"{report.share:.0%} of columns drifted (dataset drift at ≥ {report.share_threshold:.0%})</div>"
            f"<div style='font-size:12px;color:{_GREY}'>reference {report.n_reference} rows, current "
            f"{report.n_current} rows</div>")
    rows = []
    for r in report.columns.itertuples():
        style = f"color:{_RED};font-weight:600" if r.drifted else ""
        rows.append(f"<tr style='{style}'><td>{escape(str(r.column))}</td><td>{escape(r.kind)}</td>"
                    f"<td>{escape(r.test)}</td><td>{_num(r.statistic)}</td><td>{_num(r.p_value)}</td>"
                    f"<td>{r.threshold:g}</td><td>{_num(r.effect_size)}</td><td>{'yes' if r.drifted else 'no'}</td>"
                    f"<td>{r.n_reference}</td><td>{r.n_current}</td></tr>")
    table = ("<table style='border-collapse:collapse;font-size:12px'><thead><tr><th>column</th><th>kind</th>"
             "<th>test</th><th>statistic</th><th>p-value</th><th>threshold</th><th>effect size</th><th>drifted</th>"
             "<th>n ref</th><th>n current</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    signals = "".join(f"<li>{escape(str(r.column))}: {escape(r.detail)}</li>" for r in report.signals.itertuples())
    signals = f"<div><b>signals</b><ul style='font-size:12px'>{signals}</ul></div>" if signals else ""
    plots = "".join(bars(report.meta["plots"][c], c) for c in report.drifted_columns
                    if c in report.meta.get("plots", {}))
    return head + table + signals + plots


def save_html(body: str, path, *, title: str) -> Path:
    """One self-contained HTML file: inline styles, no scripts, no external resources."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
                    f"<body style='font-family:sans-serif;margin:24px'><h2>{escape(title)}</h2>{body}</body></html>")
    return path
