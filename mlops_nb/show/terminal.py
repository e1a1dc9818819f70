"""Terminal rendering of registry objects (rich tables) and their JSON form."""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops_nb.registry.artifacts import blob_path

_STATUS_STYLE = {"running": "cyan", "finished": "green", "failed": "red", "interrupted": "yellow"}
_MAX_KEY_COLUMNS = 6


def console(stderr: bool = False) -> Console:
    # Piped output (make, CI logs, `| less`) gets wide lines rather than truncated cells.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS") or 200)
    return Console(highlight=False, soft_wrap=False, width=width, stderr=stderr)


# -- JSON ------------------------------------------------------------------------

def jsonable(value: Any) -> Any:
    """Plain JSON values; NaN and infinities become the strings "NaN", "Infinity", "-Infinity"
    so strict parsers (jq, browsers) accept the output."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    print(json.dumps(jsonable(value), indent=2, allow_nan=False))


def run_dict(run, artifacts_dir=None, **extra: Any) -> dict:
    """A run as JSON; with ``artifacts_dir``, each artifact with the ``path`` of its file."""
    stored = run.artifacts if artifacts_dir is None else {
        name: {**a, "path": str(blob_path(Path(artifacts_dir), a["sha256"]))} for name, a in run.artifacts.items()}
    data = {"run_id": run.id, "name": run.name, "experiment": run.experiment, "status": run.status,
            "kind": run.kind, "parent_id": run.parent_id, "start_time": run.start_time, "end_time": run.end_time,
            "error": run.error, "git_commit": run.git_commit, "git_dirty": run.git_dirty, "env": run.env,
            "user": run.user, "host": run.host,
            "params": run.params, "metrics": run.metrics, "tags": run.tags, "artifacts": stored}
    data.update(extra)
    return data


def version_dict(version, metrics: dict | None = None) -> dict:
    return {"name": version.name, "version": version.version, "run_id": version.run_id, "source": version.source,
            "flavor": version.flavor, "sha256": version.sha256, "signature": version.signature,
            "created_at": version.created_at, "aliases": list(version.aliases), "metrics": metrics or {}}


# -- formatting ------------------------------------------------------------------

def fmt_time(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    seconds = end - start
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def fmt_value(value: Any) -> str:
    """A value for a rich table cell (markup escaped)."""
    return escape(fmt_plain(value))


def fmt_plain(value: Any) -> str:
    """A param, metric or tag value as short plain text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.1f}"  # 1.0 stays visibly a float
        return f"{value:.6g}"
    if value is None or isinstance(value, (bool, int, str)):
        return "" if value is None else str(value)
    return json.dumps(value)


def status_text(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def common_keys(dicts: Iterable[dict], limit: int = _MAX_KEY_COLUMNS) -> list[str]:
    """The keys worth a column: those whose value differs between rows first (what a comparison is about),
    then those most rows have; a key that is None or empty everywhere makes no column."""
    counts: dict[str, int] = {}
    values: dict[str, set] = {}
    for d in dicts:
        for key, value in d.items():
            if value is not None and value != "":
                counts[key] = counts.get(key, 0) + 1
                values.setdefault(key, set()).add(repr(value))
    return sorted(counts, key=lambda k: (len(values[k]) < 2, -counts[k], k))[:limit]


# -- tables ----------------------------------------------------------------------

def runs_table(rows: list[dict], out: Console | None = None) -> None:
    out = out or console()
    if not rows:
        out.print("No runs match. Log one with `with mlops.start_run(): ...`, or loosen the filter.")
        return
    metric_keys = common_keys(r["metrics"] for r in rows)
    param_keys = common_keys(r["params"] for r in rows)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("run", "name", "experiment", "status", "started", "took"):
        table.add_column(header, no_wrap=True)
    for key in metric_keys:
        table.add_column(escape(key), justify="right", style="bold")
    for key in param_keys:
        table.add_column(escape(key), justify="right", style="dim")
    for r in rows:
        table.add_row(r["run_id"][:8], escape(r["name"]), escape(r["experiment"]), status_text(r["status"]),
                      fmt_time(r["start_time"]), fmt_duration(r["start_time"], r["end_time"]),
                      *(fmt_value(r["metrics"].get(k)) for k in metric_keys),
                      *(fmt_value(r["params"].get(k)) for k in param_keys))
    out.print(table)
    if metric_keys or param_keys:
        out.print(f"[dim]bold columns are metrics (latest value), dim columns are params; "
                  f"{len(rows)} run(s) shown[/]")


def run_detail(run, *, lineage: dict, metric_steps: dict[str, int], out: Console | None = None,
               artifacts_dir=None) -> None:
    out = out or console()
    out.print(f"[bold]{escape(run.name)}[/]  run {run.id}")
    commit = f"{run.git_commit[:10]}{' (dirty)' if run.git_dirty else ''}" if run.git_commit else "not in git"
    info = [("experiment", escape(run.experiment)), ("status", status_text(run.status)), ("kind", run.kind),
            ("started", fmt_time(run.start_time)), ("took", fmt_duration(run.start_time, run.end_time)),
            ("parent", run.parent_id or ""), ("by", f"{escape(run.user or '?')} on {escape(run.host or '?')}"),
            ("git", commit),
            ("python", run.env.get("python", "")),
            ("packages", ", ".join(f"{k} {v}" for k, v in run.env.get("packages", {}).items()))]
    _pairs(out, info)
    if run.error:
        out.print(f"[red]error:[/] {escape(run.error.splitlines()[0])}")
    if run.params:
        out.print("\n[bold]params[/]")
        _pairs(out, [(k, fmt_value(v)) for k, v in run.params.items()])
    if run.metrics:
        out.print("\n[bold]metrics[/] (latest value, values logged)")
        _pairs(out, [(k, f"{fmt_value(v)}  ({metric_steps.get(k, 1)})") for k, v in run.metrics.items()])
    if run.tags:
        out.print("\n[bold]tags[/]")
        _pairs(out, [(k, escape(v)) for k, v in run.tags.items()])
    if run.artifacts:
        out.print("\n[bold]artifacts[/]")
        if artifacts_dir is None:
            _pairs(out, [(name, f"{a['size']:,} bytes  sha256 {a['sha256'][:12]}") for name, a in run.artifacts.items()])
        else:  # and where each file is, to open it: a path on its own line, never cut
            for name, a in run.artifacts.items():
                out.print(f"{escape(name)}  [dim]{a.get('kind', 'file')}, {a['size']:,} bytes[/]")
                out.print(f"  {escape(str(blob_path(Path(artifacts_dir), a['sha256'])))}", soft_wrap=True)
    if lineage["datasets"] or lineage["models"] or lineage["children"]:
        out.print("\n[bold]lineage[/]")
        pairs = [(d["role"], f"dataset {escape(d['name'])} ({d['fingerprint'][:12]})") for d in lineage["datasets"]]
        pairs += [("model", escape(f"{m['name']}/{m['version']}")) for m in lineage["models"]]
        pairs += [("step" if c["step"] else "child run",
                   f"{escape(c['name'])} {c['run_id'][:8]} "
                   f"{'cached from ' + c['cached_from'][:8] if c['cached_from'] else c['status']}")
                  for c in lineage["children"]]
        _pairs(out, pairs)


def compare_table(found: list, out: Console | None = None) -> None:
    out = out or console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("")
    for run in found:
        table.add_column(f"{escape(run.name)}\n{run.id[:8]}", justify="right")
    table.add_row("status", *(status_text(r.status) for r in found))
    param_keys = sorted({k for r in found for k in r.params})
    for key in param_keys:
        values = [fmt_value(r.params[key]) if key in r.params else "—" for r in found]
        differs = len(set(values)) > 1
        label = f"[yellow]params.{escape(key)}[/]" if differs else f"params.{escape(key)}"
        table.add_row(label, *(f"[yellow]{v}[/]" if differs else v for v in values))
    for key in sorted({k for r in found for k in r.metrics}):
        values = [r.metrics.get(key) for r in found]
        finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
        best = max(finite) if finite else None
        table.add_row(f"metrics.{escape(key)}", *("—" if v is None else
                                          f"[bold]{fmt_value(v)}[/]" if v == best and len(finite) > 1 else fmt_value(v)
                                          for v in values))
    out.print(table)
    out.print("[dim]yellow: params that differ; bold: the highest value of each metric[/]")


def experiments_table(rows: list[dict], out: Console | None = None) -> None:
    out = out or console()
    if not rows:
        out.print("No experiments yet.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("experiment", "runs", "last run", "created"):
        table.add_column(header)
    for r in rows:
        table.add_row(escape(r["name"]), str(r["runs"]), fmt_time(r["last_run"]), fmt_time(r["created_at"]))
    out.print(table)


def datasets_table(rows: list[dict], out: Console | None = None) -> None:
    out = out or console()
    if not rows:
        out.print("No datasets yet. A fitted estimator's frame is logged by %%track; or mlops.log_dataset(df, name).")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("dataset", "versions", "newest", "rows", "columns", "used by runs", "updated"):
        table.add_column(header)
    for r in rows:
        table.add_row(escape(r["name"]), str(r["versions"]), r["fingerprint"][:12], str(r["n_rows"] or ""),
                      str(r["n_cols"] or ""), str(r["runs"]), fmt_time(r["updated_at"]))
    out.print(table)


def dataset_detail(name: str, versions: list[dict], out: Console | None = None) -> None:
    out = out or console()
    out.print(f"[bold]{escape(name)}[/]: {len(versions)} version(s), newest first")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("version", "rows", "columns", "first seen", "used by", "models"):
        table.add_column(header)
    for v in versions:
        used = ", ".join(f"{r['run_id'][:8]} {r['name']} ({r['role']})" for r in v["runs"][:4])
        if len(v["runs"]) > 4:
            used += f", and {len(v['runs']) - 4} more"
        table.add_row(v["fingerprint"][:12], str(v["n_rows"] or ""), str(v["n_cols"] or ""),
                      fmt_time(v["created_at"]), escape(used), escape(", ".join(f"{m['name']}/{m['version']}"
                                                                                 for m in v["models"])))
    out.print(table)
    out.print("[dim]a version is the data's content (sha256): the same data logged again is the same version[/]")


def models_table(rows: list[dict], out: Console | None = None) -> None:
    out = out or console()
    if not rows:
        out.print("No registered models yet. Register one with mlops.register_model(run, name).")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("model", "versions", "latest", "aliases", "updated"):
        table.add_column(header)
    for r in rows:
        aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(r["aliases"].items()))
        table.add_row(escape(r["name"]), str(r["versions"]), str(r["latest_version"] or ""), escape(aliases),
                      fmt_time(r["updated_at"]))
    out.print(table)


def model_detail(name: str, versions: list, metrics: dict[int, dict], history: list[dict],
                 out: Console | None = None) -> None:
    out = out or console()
    out.print(f"[bold]{escape(name)}[/]")
    metric_keys = common_keys(metrics.values())
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("version", "aliases", "run", "created", "inputs"):
        table.add_column(header)
    for key in metric_keys:
        table.add_column(escape(key), justify="right")
    for v in versions:
        inputs = len((v.signature or {}).get("inputs", []))
        table.add_row(str(v.version), escape(", ".join(v.aliases)), v.run_id[:8], fmt_time(v.created_at),
                      str(inputs) if inputs else "", *(fmt_value(metrics[v.version].get(k)) for k in metric_keys))
    out.print(table)
    if history:
        out.print("[bold]alias history[/]")
        for h in history:
            moved = f"{h['previous']} -> {h['version']}" if h["previous"] is not None else f"-> {h['version']}"
            reason = f"  ({h['reason']})" if h["reason"] else ""
            by = f"  by {h['user']}@{h['host']}" if h.get("user") else ""
            out.print(f"  {fmt_time(h['at'])}  {h['alias']:<12} {h['action']:<9} {moved}{reason}{by}", markup=False)


def _pairs(out: Console, pairs: list[tuple[str, str]]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    for key, value in pairs:
        table.add_row(escape(key), str(value))
    out.print(table)


def kernels_table(reply: dict, out: Console | None = None) -> None:
    out = out or console()
    out.print(f"kernel daemon pid {reply['pid']}, stops after {reply['idle_timeout']:g} s idle")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("kernel", "name", "state", "pid", "runs", "memory", "idle", "preloaded"):
        table.add_column(header)
    for k in reply["kernels"]:
        memory = f"{k['memory_mb']:.0f} MB" if k.get("memory_mb") else ""
        table.add_row(str(k["id"]), escape(k["kernel"]), k["state"], str(k["pid"] or ""), str(k["runs"]), memory,
                      f"{k['idle_s']:.0f}s", escape(", ".join(k["preloaded"])))
    out.print(table)


def check_report(result, quiet: bool = False, out: Console | None = None) -> None:
    out = out or console()
    for firing in result.fired:
        out.print(f"{escape(result.pipeline)}: [bold]{firing.trigger.key}[/] fired: {escape(firing.reason)}")
    if result.retried:
        out.print(f"{escape(result.pipeline)}: {len(result.retried)} firing(s) whose run was interrupted fire again")
    for key, error in result.errors.items():
        out.print(f"{escape(result.pipeline)}: [red]{key} could not be evaluated[/]: {escape(error)}")
    if result.busy:
        out.print(f"{escape(result.pipeline)}: process {result.busy} is running it; the firings stay pending and "
                  "run at the next check after it ends")
    for run in result.runs:
        out.print(f"{escape(result.pipeline)}: run {run.run_id[:8]} {run.status}")
    if not quiet and not (result.fired or result.errors or result.runs):
        for key, note in result.notes.items():
            out.print(f"{escape(result.pipeline)}: {key}: {escape(note)}", highlight=False)
        if not result.notes:
            out.print(f"{escape(result.pipeline)}: no triggers")


def triggers_table(rows: list[dict], out: Console | None = None) -> None:
    out = out or console()
    if not rows:
        out.print("This pipeline has no triggers: add a triggers: list to pipeline.yaml (mlops-nb help pipeline).")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("trigger", "watches", "state", "last fired"):
        table.add_column(header)
    for r in rows:
        state = f"[red]error: {escape(r['error'])}[/]" if r["error"] else escape(r["state"])
        fired = f"{fmt_time(r['last_fired'])} {escape(r['last_reason'] or '')}" if r["last_fired"] else "never"
        table.add_row(r["trigger"], escape(r["description"]), state, fired)
    out.print(table)


def events_table(events: list[dict], out: Console | None = None) -> None:
    out = out or console()
    if not events:
        out.print("No trigger events yet.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("when", "trigger", "status", "run", "by", "why"):
        table.add_column(header)
    for e in events:
        by = f"{e['user']}@{e['host']}" if e.get("user") else ""
        table.add_row(fmt_time(e["fired_at"]), e["trigger"], e["status"], (e["run_id"] or "")[:8], escape(by),
                      escape(e["reason"]))
    out.print(table)


def monitor_table(m, out: Console | None = None) -> None:
    """A served model's windows, oldest first, then where the alias moved and triggers fired."""
    from mlops_nb.show.html import monitor_summary

    out = out or console()
    out.print(escape(monitor_summary(m)))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("window", "n", "versions", "p50 ms", "p99 ms", "drift", "drifted", "pred. drift", m.metric,
                   "labels"):
        table.add_column(header, justify="right" if header in ("n", "p50 ms", "p99 ms", "drift", m.metric,
                                                                "labels") else "left")
    for r in m.windows.itertuples():
        drifted = ", ".join(r.drifted or [])
        table.add_row(_clock(r.start) + "–" + _clock(r.end)[-8:], f"{r.n:,}", r.versions, _num(r.p50_ms, ".1f"),
                      _num(r.p99_ms, ".1f"), _num(r.drift_share, ".0%"),
                      escape(drifted if len(drifted) <= 30 else drifted[:29] + "…"),
                      {True: "[red]yes[/]", False: "no"}.get(r.prediction_drifted, "–"),
                      _num(r.metric, ".3f"), f"{r.labelled:,} ({r.coverage:.0%})")
    out.print(table)
    for mark in m.markers:
        out.print(f"  {_clock(mark['time'])}  {mark['kind']:<8} {escape(mark['text'])}")
    for note in m.notes:
        out.print(f"[dim]{escape(note)}[/]")


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S")


def _num(value, spec: str) -> str:
    return "–" if value is None or value != value else format(value, spec)
