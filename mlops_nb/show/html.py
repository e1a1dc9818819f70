"""Static HTML for registry objects: what notebooks, papermill outputs and exports show.

Plain tables with inline styles (JupyterLab's sanitizer keeps those), and line
charts as inline SVG so that nothing needs a plotting library or JavaScript.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import Any, Iterable, Sequence

from mlops_nb.show.terminal import common_keys as render_common_keys
from mlops_nb.show.terminal import fmt_duration, fmt_plain, fmt_time

_STATUS_COLOR = {"running": "#1565c0", "finished": "#2e7d32", "failed": "#c62828", "interrupted": "#ef6c00",
                 "ran": "#2e7d32", "cached": "#546e7a", "skipped": "#757575"}
_TABLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_TH = "text-align:left;padding:3px 8px;border-bottom:1px solid #999;white-space:nowrap"
_TD = "padding:2px 8px;border-bottom:1px solid #e0e0e0;white-space:nowrap"
_DIFF = "background:#fff3c4"
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def cell(value: Any, style: str = "", numeric: bool = False) -> str:
    # JupyterLab right-aligns every table cell; text reads better flush left.
    align = "text-align:right;" if numeric else "text-align:left;"
    return f'<td style="{_TD};{align}{style}">{value}</td>'


def text_value(value: Any) -> str:
    return e(fmt_plain(value))


def status_html(status: str) -> str:
    return f'<span style="color:{_STATUS_COLOR.get(status, "#333")};font-weight:600">{e(status)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, title: str = "") -> str:
    head = "".join(f'<th style="{_TH}">{h}</th>' for h in headers)
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    caption = f'<div style="font-weight:600;margin-top:6px">{title}</div>' if title else ""
    return f'{caption}<table class="mlops-nb" style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def common_keys(dicts: Iterable[dict], limit: int = 8) -> list[str]:
    return render_common_keys(dicts, limit)


def runs_html(rows: list[dict], *, title: str = "") -> str:
    if not rows:
        return "<p>No runs match.</p>"
    metric_keys = common_keys(r["metrics"] for r in rows)
    param_keys = common_keys(r["params"] for r in rows)
    headers = (["run", "name", "experiment", "status", "started", "took"]
               + [f"<b>{e(k)}</b>" for k in metric_keys] + [f"<i>{e(k)}</i>" for k in param_keys])
    body = []
    for r in rows:
        body.append([cell(f"<code>{e(r['run_id'][:8])}</code>"), cell(e(r["name"])), cell(e(r["experiment"])),
                     cell(status_html(r["status"])), cell(e(fmt_time(r["start_time"]))),
                     cell(e(fmt_duration(r["start_time"], r["end_time"])), numeric=True)]
                    + [cell(text_value(r["metrics"].get(k)), "font-weight:600", True) for k in metric_keys]
                    + [cell(text_value(r["params"].get(k)), numeric=True) for k in param_keys])
    note = "<div style='font-size:11px;color:#666'>bold: metrics (latest value); italic: params</div>"
    return table(headers, body, title=title) + note


def split_model_params(run) -> tuple[dict, dict[str, int]]:
    """The run's own params, and each logged model with how many of its estimator params (``clf.C``...)
    the run holds: a summary names those, the run's page lists them."""
    models = {name[len("models/"):-len(".pkl")]: 0 for name in run.artifacts if name.startswith("models/")}
    own = {}
    for key, value in run.params.items():
        owner = key.split(".", 1)[0] if "." in key else None
        if owner in models:
            models[owner] += 1
        else:
            own[key] = value
    return own, models


def run_summary_html(run) -> str:
    """One line for the output of a %%track cell."""
    took = fmt_duration(run.start_time, run.end_time)
    parts = [f"<b>{e(run.name)}</b> <code>{e(run.id[:8])}</code>", status_html(run.status),
             e(took), f"experiment <i>{e(run.experiment)}</i>"]
    own, models = split_model_params(run)
    if own:
        parts.append("params " + ", ".join(f"{e(k)}={text_value(v)}" for k, v in list(own.items())[:8])
                     + (" …" if len(own) > 8 else ""))
    if run.metrics:
        parts.append("metrics " + ", ".join(f"<b>{e(k)}={text_value(v)}</b>" for k, v in list(run.metrics.items())[:8]))
    if models:
        parts.append("models " + ", ".join(f"{e(m)} ({n} estimator params)" if n else e(m) for m, n in models.items()))
    return ('<div class="mlops-nb-run" style="font-size:12px;border-left:3px solid '
            f'{_STATUS_COLOR.get(run.status, "#333")};padding:2px 8px">' + " · ".join(parts) + "</div>")


def pipeline_result_html(result) -> str:
    """A pipeline run as a notebook shows it: each step's state, time, run and executed notebook."""
    rows = []
    for step in result.steps.values():
        note = step.reason or (f"from run {step.cached_from[:8]}" if step.cached_from else "")
        if step.failure is not None:
            note = step.failure.summary()
        # The full path on hover: the file browser does not open the hidden .mlops/ (the sidebar does).
        notebook = f'<code title="{e(step.notebook)}">{e(_short_path(step.notebook))}</code>' if step.notebook else ""
        rows.append([cell(e(step.name)), cell(status_html(step.status)), cell(f"{step.seconds:.1f} s", numeric=True),
                     cell(f"<code>{e((step.run_id or '')[:8])}</code>"), cell(notebook), cell(e(note))])
    title = (f"pipeline {e(result.pipeline)} · run <code>{e(result.run_id[:8])}</code> · {status_html(result.status)}"
             f" in {result.seconds:.1f} s")
    return table(["step", "state", "took", "run", "executed notebook", "note"], rows, title=title)


def _short_path(path) -> str:
    """``.mlops/runs/1a2b3c4d…/train.ipynb``: where in the project an executed notebook is, briefly."""
    parts = path.parts
    if ".mlops" in parts:
        tail = list(parts[parts.index(".mlops"):])
        if len(tail) > 3 and len(tail[2]) > 8:
            tail[2] = tail[2][:8] + "…"
        return "/".join(tail)
    return path.name


def run_html(run, lineage: dict, metric_steps: dict[str, int]) -> str:
    rows = [("experiment", e(run.experiment)), ("status", status_html(run.status)), ("kind", e(run.kind)),
            ("started", e(fmt_time(run.start_time))), ("took", e(fmt_duration(run.start_time, run.end_time))),
            ("git", e(f"{run.git_commit[:10]}{' (dirty)' if run.git_dirty else ''}" if run.git_commit else "—"))]
    if run.error:
        rows.append(("error", f'<span style="color:#c62828">{e(run.error.splitlines()[0])}</span>'))
    parts = [f"<div><b>{e(run.name)}</b> <code>{e(run.id)}</code></div>",
             table(["", ""], [[cell(k), cell(v)] for k, v in rows])]
    if run.params:
        parts.append(table(["param", "value"], [[cell(e(k)), cell(text_value(v))] for k, v in run.params.items()]))
    if run.metrics:
        parts.append(table(["metric", "latest", "values"], [[cell(e(k)), cell(text_value(v), numeric=True),
                                                            cell(metric_steps.get(k, 1), numeric=True)]
                                                           for k, v in run.metrics.items()]))
    if run.tags:
        parts.append(table(["tag", "value"], [[cell(e(k)), cell(e(v))] for k, v in run.tags.items()]))
    if run.artifacts:
        parts.append(table(["artifact", "size", "sha256"], [[cell(e(n)), cell(f"{a['size']:,}", numeric=True),
                                                            cell(f"<code>{a['sha256'][:12]}</code>")]
                                                           for n, a in run.artifacts.items()]))
    links = [[cell(e(d["role"])), cell(f"dataset {e(d['name'])} <code>{e(d['fingerprint'][:12])}</code>")]
             for d in lineage.get("datasets", [])]
    links += [[cell("model"), cell(e(f"{m['name']}/{m['version']}"))] for m in lineage.get("models", [])]
    links += [[cell("step" if c["step"] else "child run"),
               cell(f"{e(c['name'])} <code>{e(c['run_id'][:8])}</code> "
                    f"{'cached from ' + e(c['cached_from'][:8]) if c['cached_from'] else status_html(c['status'])}")]
              for c in lineage.get("children", [])]
    if links:
        parts.append(table(["lineage", ""], links))
    return "".join(parts)


def compare_html(found: list, histories: dict[str, dict[str, list[tuple[int, float]]]] | None = None) -> str:
    headers = [""] + [f"{e(r.name)}<br><code>{e(r.id[:8])}</code>" for r in found]
    body = [[cell("status")] + [cell(status_html(r.status)) for r in found]]
    for key in sorted({k for r in found for k in r.params}):
        values = [text_value(r.params[key]) if key in r.params else "—" for r in found]
        style = _DIFF if len(set(values)) > 1 else ""
        body.append([cell(f"params.{e(key)}", style)] + [cell(v, style, True) for v in values])
    for key in sorted({k for r in found for k in r.metrics}):
        values = [r.metrics.get(key) for r in found]
        finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
        best = max(finite) if len(finite) > 1 else None
        body.append([cell(f"metrics.{e(key)}")] + [cell("—" if v is None else text_value(v),
                                                        "font-weight:700" if v == best else "", True)
                                                   for v in values])
    html = table(headers, body) + ("<div style='font-size:11px;color:#666'>highlighted: params that differ; "
                                   "bold: the highest value of each metric</div>")
    for key, series in (histories or {}).items():
        if any(len(points) > 1 for points in series.values()):
            html += line_chart(series, title=key)
    return html


def line_chart(series: dict[str, list[tuple[float, float]]], *, title: str = "", width: int = 420,
               height: int = 180, x_format=None, marks: list[tuple[float, str]] = ()) -> str:
    """An inline SVG line chart: one polyline per series of (x, value) points (x a step by default;
    ``x_format`` writes it otherwise), and a dashed vertical line with a title per mark ``(x, text)``."""
    points = [(x, y) for pts in series.values() for x, y in pts if y is not None and math.isfinite(y)]
    if not points:
        return ""
    x_format = x_format or (lambda x: f"step {fmt_plain(x)}")
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, right, top, bottom = 48, 10, 20, 24
    sx = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    sy = lambda y: top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)  # noqa: E731
    lines, legend = [], []
    for i, (label, pts) in enumerate(series.items()):
        color = _PALETTE[i % len(_PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts if y is not None and math.isfinite(y))
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>')
        legend.append(f'<span style="color:{color}">&#9632; {e(label)}</span>')
    for x, text in marks:
        if x0 <= x <= x1:
            lines.append(f'<line class="mark" x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{height - bottom}" '
                         f'stroke="#999" stroke-dasharray="3,3"><title>{e(text)}</title></line>')
    axis = (f'<text x="4" y="{top + 4}" font-size="10">{e(fmt_plain(y1))}</text>'
            f'<text x="4" y="{height - bottom}" font-size="10">{e(fmt_plain(y0))}</text>'
            f'<text x="{left}" y="{height - 6}" font-size="10">{e(x_format(x0))}</text>'
            f'<text x="{width - right}" y="{height - 6}" font-size="10" text-anchor="end">{e(x_format(x1))}</text>'
            f'<text x="{left}" y="12" font-size="11" font-weight="600">{e(title)}</text>'
            f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
            'fill="none" stroke="#ccc"/>')
    return (f'<div class="mlops-nb-chart"><svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}">{axis}{"".join(lines)}</svg><div style="font-size:11px">'
            f'{" ".join(legend)}</div></div>')


def experiments_html(rows: list[dict]) -> str:
    return table(["experiment", "runs", "last run", "created"],
                 [[cell(e(r["name"])), cell(r["runs"], numeric=True), cell(e(fmt_time(r["last_run"]))),
                   cell(e(fmt_time(r["created_at"])))] for r in rows])


def datasets_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>No datasets yet.</p>"
    return table(["dataset", "versions", "newest", "rows", "columns", "used by runs", "updated"],
                 [[cell(e(r["name"])), cell(r["versions"], numeric=True), cell(f"<code>{e(r['fingerprint'][:12])}</code>"),
                   cell(r["n_rows"] or "", numeric=True), cell(r["n_cols"] or "", numeric=True),
                   cell(r["runs"], numeric=True), cell(e(fmt_time(r["updated_at"])))] for r in rows])


def dataset_html(name: str, versions: list[dict]) -> str:
    rows = []
    for v in versions:
        used = ", ".join(f"<code>{e(r['run_id'][:8])}</code> {e(r['name'])} ({e(r['role'])})" for r in v["runs"][:4])
        if len(v["runs"]) > 4:
            used += f", and {len(v['runs']) - 4} more"
        rows.append([cell(f"<code>{e(v['fingerprint'][:12])}</code>"), cell(v["n_rows"] or "", numeric=True),
                     cell(v["n_cols"] or "", numeric=True), cell(e(fmt_time(v["created_at"]))), cell(used),
                     cell(e(", ".join(f"{m['name']}/{m['version']}" for m in v["models"])))])
    return table(["version", "rows", "columns", "first seen", "used by", "models"], rows,
                 title=f"{e(name)}: {len(versions)} version(s), newest first")


def models_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>No registered models yet.</p>"
    return table(["model", "versions", "latest", "aliases", "updated"],
                 [[cell(e(r["name"])), cell(r["versions"], numeric=True), cell(r["latest_version"] or "", numeric=True),
                   cell(e(", ".join(f"{a} → {v}" for a, v in sorted(r["aliases"].items())))),
                   cell(e(fmt_time(r["updated_at"])))] for r in rows])


def model_html(name: str, versions: list, metrics: dict[int, dict], history: list[dict]) -> str:
    metric_keys = common_keys(metrics.values())
    rows = [[cell(v.version, numeric=True), cell(e(", ".join(v.aliases)), "font-weight:600"),
             cell(f"<code>{e(v.run_id[:8])}</code>"), cell(e(fmt_time(v.created_at)))]
            + [cell(text_value(metrics[v.version].get(k)), numeric=True) for k in metric_keys] for v in versions]
    html = table(["version", "aliases", "run", "created"] + [e(k) for k in metric_keys], rows, title=e(name))
    if history:
        html += table(["when", "alias", "action", "from", "to", "reason"],
                      [[cell(e(fmt_time(h["at"]))), cell(e(h["alias"])), cell(e(h["action"])),
                        cell("" if h["previous"] is None else h["previous"], numeric=True),
                        cell(h["version"], numeric=True), cell(e(h["reason"] or ""))] for h in history],
                      title="alias history")
    return html


def message_html(text: str) -> str:
    return f"<div style='font-size:12px'>{e(text)}</div>"


def sweep_html(outcome) -> str:
    """A sweep's grid points: params, state, run and every metric; the best point highlighted."""
    params = list(outcome.points[0]["params"]) if outcome.points else []
    metrics = sorted({k for p in outcome.points for k in p["metrics"]}, key=lambda k: (k != outcome.metric, k))
    rows = []
    for point in outcome.points:
        mark = "font-weight:600;background:#e8f5e9" if point is outcome.best else ""
        rows.append([cell(text_value(point["params"][k]), mark, True) for k in params]
                    + [cell(status_html(point["status"]), mark),
                       cell(f"<code>{e((point['run_id'] or '')[:8])}</code>", mark)]
                    + [cell(text_value(point["metrics"].get(k)), mark, True) for k in metrics])
    headers = [f"<i>{e(k)}</i>" for k in params] + ["status", "run"] + [f"<b>{e(k)}</b>" for k in metrics]
    best = "" if outcome.best is None else f"; best by {e(outcome.metric)} highlighted"
    return table(headers, rows, title=f"sweep: {len(outcome.points)} points, {e(outcome.result.status)}{best}")


def check_html(result) -> str:
    """One trigger check: each trigger's state (waiting, fired, error) and why, and the runs it started."""
    fired = {f.trigger.key: f.reason for f in result.fired}
    rows = []
    for key in dict.fromkeys([*result.notes, *fired, *result.errors]):
        if key in result.errors:
            state, why = "<span style='color:#c62828'>error</span>", result.errors[key]
        elif key in fired:
            state, why = "<b>fired</b>", fired[key]
        else:
            state, why = "waiting", result.notes.get(key, "")
        rows.append([cell(e(key)), cell(state), cell(e(why))])
    runs = "".join(f"<div>run <code>{e(r.run_id[:8])}</code> {status_html(r.status)}</div>" for r in result.runs)
    busy = (f"<div>busy: process {e(result.busy)} runs this pipeline; the firings stay pending and run at the next "
            "check after it ends</div>" if result.busy else "")
    return table(["trigger", "state", "why"], rows, title=f"triggers of {e(result.pipeline)}") + runs + busy


def triggers_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>This pipeline has no triggers: add a triggers: list to pipeline.yaml.</p>"
    body = []
    for r in rows:
        state = f"<span style='color:#c62828'>error: {e(r['error'])}</span>" if r["error"] else e(r["state"])
        fired = f"{e(fmt_time(r['last_fired']))} {e(r['last_reason'] or '')}" if r["last_fired"] else "never"
        body.append([cell(e(r["trigger"])), cell(e(r["description"])), cell(state), cell(fired)])
    return table(["trigger", "watches", "state", "last fired"], body)


def events_html(events: list[dict]) -> str:
    if not events:
        return "<p>No trigger events yet.</p>"
    return table(["when", "trigger", "status", "run", "why"],
                 [[cell(e(fmt_time(ev["fired_at"]))), cell(e(ev["trigger"])), cell(e(ev["status"])),
                   cell(f"<code>{e((ev['run_id'] or '')[:8])}</code>"), cell(e(ev["reason"]))] for ev in events])


def kernels_html(reply: dict | None) -> str:
    if reply is None:
        return message_html("no kernel daemon is running (start one with `mlops-nb kernels start`)")
    rows = [[cell(k["id"], numeric=True), cell(e(k["kernel"])), cell(e(k["state"])), cell(k["pid"] or "", numeric=True),
             cell(k["runs"], numeric=True), cell(f"{k['memory_mb']:.0f} MB" if k.get("memory_mb") else "", numeric=True),
             cell(f"{k['idle_s']:.0f} s", numeric=True), cell(e(", ".join(k["preloaded"])))] for k in reply["kernels"]]
    return table(["kernel", "name", "state", "pid", "runs", "memory", "idle", "preloaded"], rows,
                 title=f"kernel daemon pid {reply['pid']}, stops after {reply['idle_timeout']:g} s idle")


def model_version_html(version) -> str:
    aliases = "".join(f" <span style='background:#e3f2fd;border-radius:3px;padding:0 4px'>@{e(a)}</span>"
                      for a in version.aliases)
    inputs = ", ".join(c["name"] for c in (version.signature or {}).get("inputs", []))
    return (f"<div><b>{e(version.name)}</b> version {version.version}{aliases} · {e(version.flavor)} model "
            f"<code>{e(version.source)}</code> from run <code>{e(version.run_id[:8])}</code> · registered "
            f"{e(fmt_time(version.created_at))}" + (f"<br><span style='font-size:12px'>inputs: {e(inputs)}</span>"
                                                  if inputs else "") + "</div>")


def monitor_html(m) -> str:
    """A served model's windows as time series (traffic, latency, drift, the live metric), with a dashed line
    where the alias moved or a trigger fired, then the windows as a table."""
    w = m.windows
    xs = list(w["start"])
    clock = (lambda x: datetime.fromtimestamp(x).strftime("%m-%d %H:%M:%S"))
    marks = [(mark["time"], f"{mark['kind']}: {mark['text']}") for mark in m.markers]

    def series(column: str) -> list[tuple[float, float]]:
        return [(x, float(v)) for x, v in zip(xs, w[column]) if v is not None and v == v]

    charts = [line_chart({"predictions": series("n")}, title="traffic", x_format=clock, marks=marks),
              line_chart({"p50": series("p50_ms"), "p99": series("p99_ms")}, title="latency (ms)", x_format=clock,
                         marks=marks),
              line_chart({"inputs": series("drift_share")}, title="share of features drifted", x_format=clock,
                         marks=marks),
              line_chart({m.metric: series("metric"), "label coverage": series("coverage")},
                         title=f"live {m.metric}", x_format=clock, marks=marks)]
    rows = [[cell(clock(r.start)), cell(r.n, numeric=True), cell(r.versions), cell(_ms(r.p50_ms), numeric=True),
             cell(_ms(r.p99_ms), numeric=True), cell(_pct(r.drift_share), numeric=True),
             cell(", ".join(r.drifted or [])), cell("yes" if r.prediction_drifted else
                                                    ("no" if r.prediction_drifted is False else "–")),
             cell(fmt_plain(r.metric) if r.metric is not None and r.metric == r.metric else "–", numeric=True),
             cell(f"{r.labelled} ({r.coverage:.0%})", numeric=True)] for r in w.itertuples()]
    headers = ["window", "n", "versions", "p50 ms", "p99 ms", "drift", "drifted", "prediction drift", m.metric,
               "labels"]
    marked = "".join(f"<li>{e(clock(mark['time']))} {e(mark['kind'])}: {e(mark['text'])}</li>" for mark in m.markers)
    notes = "".join(message_html(note) for note in m.notes)
    return (f"<div class='mlops-nb-monitor'>{message_html(monitor_summary(m))}"
            f"<div style='display:flex;flex-wrap:wrap;gap:8px'>{''.join(charts)}</div>"
            f"{table(headers, rows)}{'<ul>' + marked + '</ul>' if marked else ''}{notes}</div>")


def monitor_summary(m) -> str:
    serving = f"version {m.serving} serving" if m.serving is not None else f"no version at {m.alias}"
    share = f" ({m.labelled / m.total:.0%})" if m.total else ""
    return (f"{m.model}@{m.alias}: {serving}; {m.total:,} predictions, {m.labelled:,} labelled{share}; "
            f"windows of {m.window}")


def _ms(value) -> str:
    return "–" if value is None or value != value else f"{value:.1f}"


def _pct(value) -> str:
    return "–" if value is None or value != value else f"{value:.0%}"
