"""Previews of what a run keeps to be looked at: figures, tables, images, text and dicts.

A preview is HTML made from the stored file: an image inline, the first rows of a table,
the beginning of a text or a dict. A plotly figure is kept as its JSON; the dashboard draws
it with plotly.js, a notebook's preview says where it is.
"""

from __future__ import annotations

import base64
import json
from html import escape as e
from pathlib import Path, PurePosixPath

from mlops_nb.registry.artifacts import blob_path
from mlops_nb.registry.runs import ARTIFACT_KINDS

MEDIA = tuple(kind for kind in ARTIFACT_KINDS if kind != "file")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml", ".webp": "image/webp", ".bmp": "image/bmp"}
MAX_INLINE = 5 * 2**20  # bytes: a bigger picture is named, not embedded
TABLE_ROWS = 10
TEXT_CHARS = 4000


def media_of(run) -> dict[str, dict]:
    """The artifacts of ``run`` that are there to be looked at, by name."""
    return {name: a for name, a in run.artifacts.items() if a.get("kind") in MEDIA}


def artifact_file(artifacts_dir: Path, artifact: dict) -> Path:
    return blob_path(Path(artifacts_dir), artifact["sha256"])


def preview_html(artifacts_dir: Path, name: str, artifact: dict) -> str:
    """One artifact's preview, titled with its name."""
    path = artifact_file(artifacts_dir, artifact)
    suffix = PurePosixPath(name).suffix.lower()
    try:
        body = _body(path, name, suffix, artifact)
    except (OSError, ValueError, ImportError) as exc:  # a blob gone, a file that is not what its kind says
        body = f'<div style="color:#c62828">cannot preview {e(name)}: {e(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}</div>'
    return (f'<figure class="mlops-media" data-kind="{e(artifact["kind"])}" style="margin:8px 0">'
            f'<figcaption style="font-weight:600">{e(name)} <span style="color:#777;font-weight:400">'
            f'{e(artifact["kind"])}, {artifact["size"]:,} bytes</span></figcaption>{body}</figure>')


def previews_html(artifacts_dir: Path, run) -> str:
    shown = media_of(run)
    return "".join(preview_html(artifacts_dir, name, a) for name, a in shown.items())


def _body(path: Path, name: str, suffix: str, artifact: dict) -> str:
    kind = artifact["kind"]
    if suffix in IMAGE_TYPES:
        if artifact["size"] > MAX_INLINE:
            return f"<div>{artifact['size']:,} bytes, too big to show here: {e(str(path))}</div>"
        data = base64.b64encode(path.read_bytes()).decode()
        return f'<img alt="{e(name)}" style="max-width:100%" src="data:{IMAGE_TYPES[suffix]};base64,{data}">'
    if kind == "figure" and name.endswith(".json"):
        return f"<div>a plotly figure (its JSON at {e(str(path))})</div>"
    if kind == "table" or suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        more = f"<div>{len(frame):,} rows x {frame.shape[1]} columns; the first {TABLE_ROWS}</div>" \
            if len(frame) > TABLE_ROWS else f"<div>{len(frame):,} rows x {frame.shape[1]} columns</div>"
        return more + frame.head(TABLE_ROWS).to_html(border=0, max_cols=30)
    text = path.read_bytes()[:TEXT_CHARS * 4].decode(errors="replace")
    if kind == "dict" and suffix == ".json":
        try:
            text = json.dumps(json.loads(path.read_bytes()), indent=2)
        except ValueError:
            pass
    cut = len(text) > TEXT_CHARS
    return (f'<pre style="max-height:24em;overflow:auto;white-space:pre-wrap">{e(text[:TEXT_CHARS])}'
            f'{"…" if cut else ""}</pre>')

