"""Reading notebooks as papermill sees them: the cell tagged ``parameters`` and its names.

Knows nothing of IPython; the magics pass in what the kernel knows (its namespace,
its input history).
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

PARAMETERS_TAG = "parameters"
# papermill's injected cell starts with this comment (papermill.translators).
INJECTED_HEADER = "# Parameters"

_cache: dict[Path, tuple[float, list[str]]] = {}


def assigned_names(source: str) -> list[str]:
    """Names a cell assigns at top level, in order (``a = 1``, ``b: int = 2``, ``c, d = 1, 2``)."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name) and leaf.id not in names:
                    names.append(leaf.id)
    return names


def parameter_names(path: str | os.PathLike) -> list[str]:
    """The names assigned in the notebook's cell tagged ``parameters`` ([] if none)."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []
    names: list[str] = []
    for cell in cells:
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            names = assigned_names("".join(source) if isinstance(source, list) else source)
            break
    _cache[path] = (mtime, names)
    return names


def notebook_path(namespace: Mapping[str, Any], cwd: str | os.PathLike | None = None) -> Path | None:
    """The notebook a kernel runs, when the front end said: JupyterLab sets ``__session__``,
    papermill ``PAPERMILL_INPUT_PATH`` (with ``--inject-paths``)."""
    for key in ("PAPERMILL_INPUT_PATH", "__session__"):
        value = namespace.get(key)
        if isinstance(value, str) and value.endswith(".ipynb"):
            path = Path(value)
            if not path.is_absolute():
                path = Path(cwd or os.getcwd()) / path
            if path.exists():
                return path
            local = Path(cwd or os.getcwd()) / Path(value).name
            if local.exists():
                return local
    return None


def injected_names(history: Iterable[str]) -> list[str]:
    """Names set by papermill's injected-parameters cells found in a kernel's input history."""
    names: list[str] = []
    for source in history:
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_HEADER):
            names.extend(n for n in assigned_names(source) if n not in names)
    return names


def notebook_params(namespace: Mapping[str, Any], history: Iterable[str], cwd=None) -> dict[str, Any]:
    """The current values of the notebook's parameters: the ``parameters`` cell's names (when
    the notebook file is known) and any names papermill injected."""
    path = notebook_path(namespace, cwd)
    names = parameter_names(path) if path else []
    names += [n for n in injected_names(history) if n not in names]
    return {name: namespace[name] for name in names
            if name in namespace and not name.startswith("PAPERMILL_")}


def chdir_project(marker: str = "pipeline.yaml") -> Path:
    """Work from the project folder, as a pipeline step does, and return it.

    A step runs with the project folder (where ``pipeline.yaml`` is) as its working
    directory, so its paths are relative to it. JupyterLab starts a notebook's kernel
    in the notebook's own folder (``notebooks/``); this moves it to the nearest folder
    at or above the working directory that holds ``marker``. In a pipeline it is a no-op.
    """
    from mlops_nb.errors import NotFoundError

    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / marker).is_file():
            if folder != here:
                os.chdir(folder)
            return folder
    raise NotFoundError(f"no {marker} in {here} or its parents: open the notebook from inside an mlops-nb project "
                        "(mlops-nb init makes one)")
