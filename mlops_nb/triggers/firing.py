"""What every trigger's evaluation shares: a firing, the files a pattern matches, the served model's window."""

from __future__ import annotations

import glob
import os
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlops_nb.errors import NotFoundError
from mlops_nb.registry import models
from mlops_nb.registry.store import Store
from mlops_nb.pipeline.trigger_spec import Trigger

LISTED = 20  # the columns, files or features an evidence lists at most


@dataclass
class Firing:
    trigger: Trigger
    reason: str
    evidence: dict


def matching_files(root: Path, patterns: list[str]) -> list[Path]:
    return [Path(p) for p in sorted(stat_files(root, patterns))]


def stat_files(root: Path, patterns: list[str]) -> dict[str, os.stat_result]:
    """{path: stat} of the regular files matching the patterns (plain strings: this runs every few seconds)."""
    found: dict[str, os.stat_result] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else os.path.join(str(root), pattern)
        for path in glob.glob(full, recursive=True):
            if path not in found:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found[path] = st
    return found


def served_window(store: Store, model: str, alias: str, state: dict, now: datetime, window: str | None, read):
    """What ``read(version, since)`` gives for the version serving at ``alias`` and the time from which its
    predictions count (the window's start, or the last firing on that version if later: what fired once does
    not fire again), as ``(version, since, read)``; or, while there is nothing to read, what it waits for."""
    from mlops_nb.monitoring.windows import window_seconds

    version = models.alias_version_or_none(store, model, alias)
    if version is None:
        return f"waiting for a version of {model!r} at {alias}"
    since = now.timestamp() - window_seconds(window) if window else None
    if state.get("version") == version and state.get("fired_at"):
        since = max(since or 0.0, state["fired_at"])
    try:
        return version, since, read(version, since)
    except NotFoundError as exc:
        if "logged yet" in str(exc):
            return f"waiting for predictions of {model} (serve it with `mlops-nb serve {model}`)"
        raise


def relative_path(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def utcnow() -> datetime:
    return datetime.fromtimestamp(time.time(), tz=timezone.utc)
