"""What a run ran on: git commit and dirty flag, Python and key package versions.

Both are cached: package versions for the process, git state for a few seconds,
because asking git costs milliseconds and runs are created a thousand a second.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path

_PACKAGES = ("mlops-nb", "numpy", "pandas", "scikit-learn", "papermill")
_GIT_TTL_S = 5.0
_git_cache: dict[Path, tuple[float, tuple[str | None, bool | None]]] = {}


@lru_cache(maxsize=1)
def python_environment() -> dict:
    packages = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), "platform": sys.platform, "packages": packages}


def git_state(cwd: str | Path | None = None) -> tuple[str | None, bool | None]:
    """(commit sha, dirty) of the git work tree holding ``cwd``; (None, None) outside git."""
    root = _git_root(Path(cwd or Path.cwd()).resolve())
    if root is None:
        return None, None
    now = time.monotonic()
    cached = _git_cache.get(root)
    if cached and now - cached[0] < _GIT_TTL_S:
        return cached[1]
    state = (_head_commit(root / ".git"), _is_dirty(root))
    _git_cache[root] = (now, state)
    return state


def _git_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _head_commit(git_dir: Path) -> str | None:
    # Read the files git itself reads, rather than paying for a subprocess.
    if git_dir.is_file():  # worktrees and submodules: "gitdir: <path>"
        text = git_dir.read_text().strip()
        if not text.startswith("gitdir:"):
            return None
        git_dir = (git_dir.parent / text.split(":", 1)[1].strip()).resolve()
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    for base in (git_dir, _common_dir(git_dir)):
        ref_file = base / ref
        if ref_file.is_file():
            return ref_file.read_text().strip() or None
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    return None  # a branch with no commits yet


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir


def _is_dirty(root: Path) -> bool | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return bool(out.stdout.strip())
