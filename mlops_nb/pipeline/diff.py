"""What changed between two pipeline runs: ``mlops-nb diff RUN_A RUN_B``.

The code cells of each step notebook (from the pipeline version each run recorded; outputs ignored), the
pipeline file, every step's params, the source data the steps read (files no step of the pipeline wrote:
what the pipeline's own steps hand on follows from the rest), the packages, and the metrics that moved.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field

from mlops_nb.errors import InvalidInputError
from mlops_nb.pipeline import version as versions
from mlops_nb.registry import artifacts, datasets, runs
from mlops_nb.registry.store import Store


@dataclass
class CellChange:
    kind: str                 # changed | added | removed
    cell_a: int | None        # 1-based position among the notebook's code cells
    cell_b: int | None
    lines: list[str]          # a unified diff of the cell's source (changed), or its source (added, removed)


@dataclass
class StepCode:
    step: str
    notebook: str
    status: str               # changed | added | removed (the whole step)
    cells: list[CellChange] = field(default_factory=list)


@dataclass
class PipelineDiff:
    a: dict                   # {id, name, pipeline, version, git_commit, git_dirty}
    b: dict
    pipeline_file: bool                                                 # pipeline.yaml changed
    code: list[StepCode] = field(default_factory=list)
    params: list[tuple[str, object, object]] = field(default_factory=list)        # (step.param, a, b)
    data: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # (step: file, fp a, fp b)
    packages: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    metrics: list[tuple[str, float | None, float | None]] = field(default_factory=list)  # (step.metric, a, b)
    missing: list[str] = field(default_factory=list)    # what a run did not record (an older mlops-nb)

    @property
    def same(self) -> bool:
        return not (self.pipeline_file or self.code or self.params or self.data or self.packages or self.metrics)


def diff_runs(store: Store, ref_a: str, ref_b: str) -> PipelineDiff:
    """Compare two pipeline runs (ids, id prefixes or names; a step run stands for its pipeline run)."""
    a, b = (_pipeline_run(store, ref) for ref in (ref_a, ref_b))
    if a.id == b.id:
        raise InvalidInputError(f"{ref_a} and {ref_b} are the same pipeline run ({a.id[:8]}); name two runs")
    va, vb = _version(store, a), _version(store, b)
    result = PipelineDiff(_summary(a, va), _summary(b, vb), pipeline_file=bool(
        va and vb and va["pipeline_file"] != vb["pipeline_file"]))
    result.missing = [f"run {r.id[:8]} recorded no pipeline version (run by an older mlops-nb): its code and "
                      "packages are not compared" for r, v in ((a, va), (b, vb)) if v is None]
    if va and vb:
        result.code = _code(va["steps"], vb["steps"])
        result.packages = _changed(va.get("packages", {}), vb.get("packages", {}))
    steps_a, steps_b = _step_runs(store, a), _step_runs(store, b)
    data_a, data_b = _source_data(store, steps_a), _source_data(store, steps_b)
    for step in _union(steps_a, steps_b):
        ra, rb = steps_a.get(step), steps_b.get(step)
        result.params += [(f"{step}.{k}", x, y) for k, x, y in _changed(_params(ra), _params(rb))]
        result.data += [(f"{step}: {k}", x, y) for k, x, y in _changed(data_a.get(step, {}), data_b.get(step, {}))]
        result.metrics += [(f"{step}.{k}", x, y) for k, x, y in _changed(_metrics(ra), _metrics(rb))
                           if not _close(x, y)]
    return result


def _pipeline_run(store: Store, ref: str):
    run = runs.get_run(store, ref)
    if run.kind == "step" and run.parent_id:
        run = runs.get_run(store, run.parent_id)
    if run.kind != "pipeline":
        raise InvalidInputError(f"run {ref} ({run.name}) is not a pipeline run; diff compares two runs of "
                                "`mlops-nb run` (list them with `mlops-nb runs ls --filter \"kind = 'pipeline'\"`)")
    return run


def _version(store: Store, run) -> dict | None:
    found = run.artifacts.get(versions.ARTIFACT)
    if found is None:
        return None
    try:
        return json.loads(artifacts.read_verified(store.artifacts_dir, found["sha256"]))
    except (OSError, ValueError):
        return None


def _summary(run, version: dict | None) -> dict:
    return {"id": run.id, "name": run.name, "pipeline": run.experiment, "status": run.status,
            "version": (version or {}).get("version") or run.tags.get(versions.TAG),
            "git_commit": run.git_commit, "git_dirty": run.git_dirty}


def _step_runs(store: Store, run) -> dict:
    """step -> its Run in this pipeline run (a run where every step was reused: the runs it reused)."""
    found = {step: run_id for step, run_id in runs.step_runs(store, run.id)}
    if not found and run.tags.get("reused"):
        found = json.loads(run.tags["reused"])
    return {step: runs.get_run(store, run_id) for step, run_id in found.items()}


def _params(run) -> dict:
    return run.params if run is not None else {}


def _metrics(run) -> dict:
    return run.metrics if run is not None else {}


def _source_data(store: Store, step_runs: dict) -> dict[str, dict]:
    """step -> {file: fingerprint} of the files it read that no step of the same pipeline run wrote."""
    read = {step: datasets.run_datasets(store, run.id) for step, run in step_runs.items()}
    written = {d["name"] for found in read.values() for d in found if d["role"] == "output"}
    return {step: {d["name"]: d["fingerprint"] for d in found if d["role"] == "input" and d["name"] not in written}
            for step, found in read.items()}


def _code(steps_a: dict, steps_b: dict) -> list[StepCode]:
    changes = []
    for step in _union(steps_a, steps_b):
        sa, sb = steps_a.get(step), steps_b.get(step)
        if sa is None or sb is None:
            kept = sa or sb
            changes.append(StepCode(step, kept["notebook"], "removed" if sb is None else "added"))
            continue
        if sa["code"] == sb["code"]:
            continue
        changes.append(StepCode(step, sb["notebook"], "changed", _cells(sa["cells"], sb["cells"])))
    return changes


def _cells(old: list[str], new: list[str]) -> list[CellChange]:
    """Cell by cell: the cells that changed in place, and those added or removed between them."""
    changes = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        pairs = min(a1 - a0, b1 - b0) if op == "replace" else 0
        for k in range(pairs):
            lines = list(difflib.unified_diff(old[a0 + k].splitlines(), new[b0 + k].splitlines(), lineterm="",
                                              n=1))[2:]
            changes.append(CellChange("changed", a0 + k + 1, b0 + k + 1, lines))
        for i in range(a0 + pairs, a1):
            changes.append(CellChange("removed", i + 1, None, old[i].splitlines()))
        for j in range(b0 + pairs, b1):
            changes.append(CellChange("added", None, j + 1, new[j].splitlines()))
    return changes


def _changed(a: dict, b: dict) -> list[tuple[str, object, object]]:
    return [(k, a.get(k), b.get(k)) for k in _union(a, b) if a.get(k) != b.get(k)]


def _union(a: dict, b: dict) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def _close(x, y) -> bool:
    if x is None or y is None:
        return x is y
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-15)

