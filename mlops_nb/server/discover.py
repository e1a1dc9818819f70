"""What a Jupyter server's root folder holds for mlops-nb: the registries (one per project) and the
pipelines below it. Hidden folders, virtual environments and dependencies are not searched."""

from __future__ import annotations

import os
from pathlib import Path

from mlops_nb.registry.home import find_home, has_registry, mask_url, registry_url

_SKIP_DIRS = {".mlops", ".git", ".ipynb_checkpoints", "node_modules", ".venv", "venv", "__pycache__"}


def find_registries(root: Path, depth: int = 4, limit: int = 50) -> list[dict]:
    """Registries this server can show: the one its root uses ($MLOPS_NB_HOME, or a ``.mlops`` at or above
    the root), then every ``.mlops`` in a project below the root. The first is the default: the root's
    own if it has one, else the one written to last (the tutorials and templates keep one per project)."""
    own = find_home(start=root)
    found = []
    for here, _files in _folders(root, depth):
        if (here / ".mlops" / "registry.db").is_file() and (here / ".mlops").resolve() != own:
            found.append(here / ".mlops")
            if len(found) >= limit:
                break
    entries = [{"id": registry_label(root, home), "home": home} for home in found]
    entries.sort(key=lambda e: -_last_write(e["home"]))
    if has_registry(own) or not entries:
        entries.insert(0, {"id": registry_label(root, own), "home": own})
    return entries


def registry_label(root: Path, home: Path) -> str:
    """A registry's name in the sidebar: a team's PostgreSQL registry by its URL (password masked), the
    SQLite file by its project folder relative to the root ("." for the root's own)."""
    url = registry_url(home)
    if url:
        return mask_url(url)
    project = home.parent
    if project.is_relative_to(root):
        return str(project.relative_to(root))
    env = os.environ.get("MLOPS_NB_HOME")
    return "$MLOPS_NB_HOME" if env and Path(env).expanduser().resolve() == home else str(home)


def _last_write(home: Path) -> float:
    return max((home / name).stat().st_mtime for name in ("registry.db", "registry.db-wal")
               if (home / name).exists())


def find_pipelines(root: Path, limit: int = 200) -> list[Path]:
    """Every pipeline file below the root, known by its content (``monitor.yaml`` as well as ``pipeline.yaml``)."""
    from mlops_nb.pipeline.spec import project_pipelines

    found = []
    for here, files in _folders(root):
        if any(name.endswith((".yaml", ".yml")) for name in files):
            found.extend(project_pipelines(here))
            if len(found) >= limit:
                break
    return found[:limit]


def _folders(root: Path, depth: int | None = None):
    """(folder, its file names) below ``root``, sorted, never entering hidden or skipped folders."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if depth is not None and len(here.relative_to(root).parts) >= depth:
            dirs.clear()
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        yield here, files
