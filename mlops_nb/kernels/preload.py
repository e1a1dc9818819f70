"""Which modules a pipeline's notebooks import, so warm kernels can import them ahead of need."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path


def notebook_imports(path: str | Path) -> list[str]:
    """Top-level module names imported by a notebook's code cells, in order of first use."""
    names: list[str] = []
    for cell in json.loads(Path(path).read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found = [node.module]
            else:
                continue
            for name in found:
                if name not in names:
                    names.append(name)
    return names


def preload_list(notebooks, extra=()) -> list[str]:
    """Installed modules the notebooks import, plus ``extra`` (pipeline.yaml's ``preload:``)."""
    wanted: list[str] = []
    for notebook in notebooks:
        wanted.extend(n for n in notebook_imports(notebook) if n not in wanted)
    wanted.extend(n for n in extra if n not in wanted)
    return [name for name in wanted if _installed(name)]


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False
