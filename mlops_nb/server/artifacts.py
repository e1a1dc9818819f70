"""A run's artifacts over HTTP, for the dashboard to show them.

    GET runs/<run>/artifacts/<name>              the file, its type by its name (images inline)
    GET runs/<run>/artifacts/<name>?view=table   a table's first rows as JSON: columns, types, rows, n_rows
    GET runs/<run>/artifacts/<name>?view=page    a plotly figure drawn by plotly.js, as a page of its own
"""

from __future__ import annotations

import json
from html import escape
from pathlib import PurePosixPath

import tornado.web

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import runs
from mlops_nb.registry.artifacts import blob_path
from mlops_nb.server.handlers import MlopsHandler
from mlops_nb.show.media import IMAGE_TYPES

TABLE_ROWS = 50
TYPES = {**IMAGE_TYPES, ".json": "application/json",
         ".yaml": "text/plain; charset=UTF-8", ".yml": "text/plain; charset=UTF-8", ".txt": "text/plain; charset=UTF-8",
         ".csv": "text/plain; charset=UTF-8", ".html": "text/plain; charset=UTF-8"}  # shown as text, never run


class ArtifactHandler(MlopsHandler):
    @property
    def content_security_policy(self) -> str:
        # A file, a table as JSON, or a page whose one script is plotly's: nothing reaches beyond it.
        if self.get_argument("view", None) == "page":
            return "frame-ancestors 'self'; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
        return "frame-ancestors 'self'; default-src 'none'; style-src 'unsafe-inline'"

    @tornado.web.authenticated
    def get(self, ref, name):
        def act():
            store = self.store()
            run = runs.get_run(store, ref)
            artifact = run.artifacts.get(name)
            if artifact is None:
                raise NotFoundError(f"run {run.name} ({run.id[:8]}) has no artifact {name!r}; it has "
                                    f"{', '.join(sorted(run.artifacts)[:10]) or 'none'}")
            path = blob_path(store.artifacts_dir, artifact["sha256"])
            if not path.is_file():
                raise NotFoundError(f"the file of artifact {name!r} is missing from the registry ({path})")
            view = self.get_argument("view", None)
            if view == "table":
                self.reply(_table(path))
            elif view == "page":
                self.finish(_plotly_page(name, path.read_bytes()), set_content_type="text/html; charset=UTF-8")
            elif view is None:
                suffix = PurePosixPath(name).suffix.lower()
                self.set_header("X-Content-Type-Options", "nosniff")
                kind = TYPES.get(suffix) or "application/octet-stream"
                if kind == "application/octet-stream":
                    self.set_header("Content-Disposition", f'attachment; filename="{PurePosixPath(name).name}"')
                self.finish(path.read_bytes(), set_content_type=kind)
            else:
                raise InvalidInputError(f"view is table or page, got {view[:40]!r}")
        self._handle(act)


def _table(path) -> dict:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"the artifact is not a table: {str(exc).splitlines()[0][:200]}") from None
    head = frame.head(TABLE_ROWS)
    return {"columns": [str(c) for c in frame.columns], "types": [str(t) for t in frame.dtypes],
            "rows": json.loads(head.to_json(orient="values", date_format="iso")), "n_rows": len(frame)}


def _plotly_page(name: str, figure: bytes) -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise NotFoundError("plotly is not installed where JupyterLab runs: pip install plotly, to draw "
                            f"{name}") from None
    json.loads(figure)  # a figure's JSON, or a clear error
    data = escape(figure.decode(), quote=True)
    return (f"<!doctype html><meta charset='utf-8'><title>{escape(name)}</title><body style='margin:0'>"
            f"<div id='figure' data-figure=\"{data}\" style='width:100%;height:100vh'></div>"
            f"<script>{get_plotlyjs()}</script><script>const f = JSON.parse(document.getElementById('figure')"
            ".dataset.figure); Plotly.newPlot('figure', f.data, f.layout, {responsive: true});</script>")
