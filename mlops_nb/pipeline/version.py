"""The version of the pipeline a run ran: git commit, ``pipeline.yaml`` and each step notebook's code.

Every pipeline run records one (the tag ``mlops.pipeline_version``, a short hash of the pipeline file and of
every step's code cells; the whole of it as the run's artifact ``pipeline_version.json``), so that
``mlops-nb diff`` can say what changed between two runs: the code cells (outputs ignored), the params,
the input data, the packages. Only code cells count, without papermill's injected-parameters cell or
our context cell: running, clearing outputs or renumbering a notebook does not make a new version.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path

from mlops_nb.tracking import environment

ARTIFACT = "pipeline_version.json"
TAG = "mlops.pipeline_version"
_GENERATED = {"injected-parameters", "mlops-nb-context"}   # cells papermill and the runner add


def code_cells(notebook: dict) -> list[str]:
    """The sources of a notebook's code cells, without the cells a run adds to it."""
    cells = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code" or _GENERATED & set(cell.get("metadata", {}).get("tags", [])):
            continue
        source = cell.get("source", "")
        cells.append("".join(source) if isinstance(source, list) else source)
    return cells


def pipeline_version(pipeline) -> dict:
    """What ``pipeline`` is now: its file's hash, each step's code cells, git, packages; ``version`` hashes
    the pipeline file and the steps' code (what a change to the pipeline itself is)."""
    steps = {}
    for step in pipeline.steps:
        try:
            cells = code_cells(json.loads(step.notebook.read_text(encoding="utf-8")))
        except (OSError, ValueError):  # a missing or broken notebook: the run itself says so
            cells = []
        notebook = step.notebook.relative_to(pipeline.root) if step.notebook.is_relative_to(pipeline.root) \
            else step.notebook
        steps[step.name] = {"notebook": str(notebook), "code": _sha(json.dumps(cells)), "cells": cells}
    try:
        spec = hashlib.sha256(pipeline.path.read_bytes()).hexdigest()
    except OSError:  # a sweep's pipeline exists only in memory: its params and notebooks are what it is
        spec = _sha(json.dumps([pipeline.name, pipeline.params, [str(s.notebook) for s in pipeline.steps]],
                               sort_keys=True, default=str))
    commit, dirty = environment.git_state(pipeline.root)
    version = _sha(json.dumps([spec, sorted((name, s["code"]) for name, s in steps.items())]))[:12]
    return {"version": version, "pipeline_file": spec, "git": {"commit": commit, "dirty": dirty},
            "steps": steps, "packages": installed_packages()}


@lru_cache(maxsize=1)
def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version, read once per process from the names of the
    ``NAME-VERSION.dist-info`` folders on ``sys.path`` (parsing each one's metadata costs 100 times more)."""
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.endswith(".dist-info") and "-" in entry.name:
                    name, version = entry.name[:-len(".dist-info")].split("-", 1)
                    found.setdefault(name.lower().replace("_", "-"), version)  # the first on the path wins
    return dict(sorted(found.items()))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_version(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
