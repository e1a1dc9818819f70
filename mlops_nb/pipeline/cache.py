"""When a step can be skipped: same notebook, same params, same inputs, outputs still there.

The cache key hashes the notebook's code cells and kernel, the resolved params, the
content of every file input, the newest write of each feature view input, and what each
upstream step handed on. A step whose
key matches its last successful run, and whose output files still have the content
recorded then, is not run again.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

from mlops_nb.errors import NotFoundError
from mlops_nb.registry import outputs, runs
from mlops_nb.registry.store import Store


def notebook_digest(path: Path) -> str:
    """The code and kernel of a notebook, ignoring outputs, markdown and metadata noise."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    digest.update(json.dumps(nb.get("metadata", {}).get("kernelspec", {}).get("name")).encode())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            digest.update(("".join(source) if isinstance(source, list) else source).encode())
            digest.update(b"\x1e")
    return digest.hexdigest()


def expand_inputs(root: Path, patterns: list[str]) -> list[Path]:
    """File inputs with globs expanded, sorted; a plain path that is missing is an error."""
    files: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            files.extend(Path(p) for p in sorted(glob.glob(str(root / pattern), recursive=True)) if Path(p).is_file())
        else:
            path = root / pattern
            if not path.is_file():
                raise NotFoundError(f"input {pattern} does not exist (looked in {root})")
            files.append(path)
    return files


def cache_key(store: Store, *, notebook: Path, params: dict, kernel: str | None, input_files: list[Path],
              upstream_runs: dict[str, str], root: Path, feature_writes: dict[str, str] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(notebook_digest(notebook).encode())
    digest.update(json.dumps([params, kernel], sort_keys=True, default=str).encode())
    for path in input_files:
        digest.update(f"{path.relative_to(root) if path.is_relative_to(root) else path}\x1f".encode())
        digest.update(outputs.fingerprint_file(store, path).encode())
    for view, write in sorted((feature_writes or {}).items()):
        digest.update(f"features:{view}\x1f{write}".encode())
    for step in sorted(upstream_runs):
        digest.update(f"{step}\x1f{outputs.outputs_identity(store, upstream_runs[step])}".encode())
    return digest.hexdigest()


def feature_writes(store: Store, views: list[str]) -> dict[str, str]:
    """view -> its newest write (version and content), for the cache key; a view never written is an error."""
    from mlops_nb.registry import features

    found = {}
    for view in views:
        written = features.versions(store, view)
        if not written:
            from mlops_nb.pipeline.spec import suggest

            raise NotFoundError(f"input features:{view}: feature view {view!r} has never been written"
                                f"{suggest(view, features.view_names(store))}; write it with mlops.write_features "
                                "(in an earlier step, or in the step that feeds it)")
        found[view] = f"{written[-1]['version']}:{written[-1]['sha256']}"
    return found


def find_cached(store: Store, *, pipeline: str, step: str, key: str, root: Path) -> str | None:
    """The last successful run of this step with ``key`` whose output files are unchanged."""
    found = runs.find_cached_step(store, pipeline, step, key)
    if found is None:
        return None
    for output in outputs.run_outputs(store, found):
        if output["kind"] != "file":
            continue
        path = Path(output["path"])
        try:
            if outputs.fingerprint_file(store, path) != output["sha256"]:
                return None
        except NotFoundError:
            return None
    return found


def why_not_cached(store: Store, *, pipeline: str, step: str) -> str:
    """Why a step runs that may be cached: it never ran, or what it ran on changed."""
    last = runs.last_finished_step(store, pipeline, step)
    if last is None:
        return "first run of this step"
    return f"notebook, params or inputs changed since run {last[:8]} (or its output files did)"
