"""What ``mlops-nb features ls|show`` shows (the terminal, JSON for scripts, HTML in a notebook; see :mod:`.views`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from mlops_nb.show import html, terminal
from mlops_nb.show.views import View


def _ago(ts: float | None) -> str:
    if ts is None:
        return "never"
    seconds = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _utc(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _share(write: dict) -> str:
    if "drift_share" not in write:
        return ""
    drifted = write["drifted"]
    return f"{write['drift_share']:.0%}" + (f" ({', '.join(drifted[:3])})" if drifted else "")


def _ttl(seconds: float | None) -> str:
    if seconds is None:
        return "none (values never expire)"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


_LIST = ("view", "entity", "features", "writes", "rows", "entities online", "last write", "newest values",
         "models")


def _list_row(r: dict) -> list[str]:
    return [r["name"] + ("" if r["declared"] else " (not declared here)"), ", ".join(r["entity"] or []),
            "" if r["features"] is None else str(r["features"]), str(r["versions"]), f"{r['rows']:,}",
            f"{r['entities']:,}", _ago(r["last_write"]), _utc(r["newest_time"]), ", ".join(r["models"][:4])]


@dataclass(repr=False)
class FeaturesView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        out = out or terminal.console()
        if not self.rows:
            out.print("No feature views yet: declare one in features.yaml, then write it with "
                      "mlops.write_features(name, df).")
            return
        table = terminal.Table(box=terminal.box.SIMPLE_HEAD, pad_edge=False)
        for header in _LIST:
            table.add_column(header)
        for r in self.rows:
            table.add_row(*map(terminal.escape, _list_row(r)))
        out.print(table)

    def _repr_html_(self):
        if not self.rows:
            return "<p>No feature views yet.</p>"
        return html.table(list(_LIST), [[html.cell(html.e(v)) for v in _list_row(r)] for r in self.rows])


_WRITES = ("write", "rows", "values from", "values to", "written", "run", "drift")


def _write_row(w: dict) -> list[str]:
    return [str(w["version"]), f"{w['n_rows']:,}", _utc(w["min_time"]), _utc(w["max_time"]), _ago(w["created_at"]),
            (w["run_id"] or "")[:8], _share(w)]


@dataclass(repr=False)
class FeatureDetailView(View):
    found: dict

    def to_json(self):
        return self.found

    def _lines(self) -> list[str]:
        f = self.found
        lines = [f"entity {', '.join(f['entity'])}, time {f['timestamp']}, ttl {_ttl(f['ttl_seconds'])}"
                 + (f", source {next(iter(f['source']))}: {next(iter(f['source'].values()))}" if f["source"] else "")]
        lines.append(f"{f['versions']} write(s); last {_ago(f['writes'][-1]['created_at'])}" if f["writes"]
                     else "never written: mlops.write_features(" + repr(f["name"]) + ", df)")
        models = ", ".join(f"{m['name']}/{m['version']}" + (f" ({', '.join(m['aliases'])})" if m["aliases"] else "")
                           for m in f["models"])
        lines.append(f"models trained on it: {models or 'none yet (mlops.training_frame in a run links them)'}")
        if f["reference"]:
            lines.append(f"drift: each write against the values {f['reference']} (production) was trained on")
        elif f["note"]:
            lines.append(f"drift: {f['note']}")
        return lines

    def print_terminal(self, out=None):
        escape = terminal.escape
        out = out or terminal.console()
        f = self.found
        out.print(f"[bold]{escape(f['name'])}[/]" + (f": {escape(f['description'])}" if f["description"] else ""))
        for line in self._lines():
            out.print(escape(line))
        features = terminal.Table(box=terminal.box.SIMPLE_HEAD, pad_edge=False)
        for header in ("feature", "dtype", "description"):
            features.add_column(header)
        for feature in f["features"]:
            features.add_row(escape(feature["name"]), feature["dtype"], escape(feature["description"]))
        out.print(features)
        if f["writes"]:
            writes = terminal.Table(box=terminal.box.SIMPLE_HEAD, pad_edge=False, title="writes, oldest first")
            for header in _WRITES:
                writes.add_column(header)
            for w in f["writes"]:
                writes.add_row(*map(escape, _write_row(w)))
            out.print(writes)

    def _repr_html_(self):
        f = self.found
        head = f"<p><b>{html.e(f['name'])}</b>" + (f": {html.e(f['description'])}" if f["description"] else "") + "</p>"
        lines = "".join(f"<p>{html.e(line)}</p>" for line in self._lines())
        features = html.table(["feature", "dtype", "description"],
                              [[html.cell(html.e(x["name"])), html.cell(x["dtype"]), html.cell(html.e(x["description"]))]
                               for x in f["features"]])
        writes = html.table(list(_WRITES), [[html.cell(html.e(v)) for v in _write_row(w)] for w in f["writes"]],
                            title="writes, oldest first") if f["writes"] else ""
        return head + lines + features + writes
