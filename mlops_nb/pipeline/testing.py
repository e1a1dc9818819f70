"""``mlops-nb test``: the pipeline itself tested on a small sample before it runs for real (level 2's CI).

Every step runs on the ``test_params:`` of the pipeline and of the step (``{newest_rows: 300,
n_estimators: 5}``: what makes it fast), in a copy of the project in a temporary folder with a throwaway
SQLite registry, on warm kernels; the project's files and its registry are left as they are. Each step
passes when its params are all declared by its notebook, it runs, its declared outputs exist and keep the
columns (and kinds of column) of the output the project's registry recorded last, and, for a gate step
(one that calls ``mlops.gate``), it records a gate decision.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from mlops_nb.errors import InvalidInputError, MlopsError
from mlops_nb.pipeline import version as versions
from mlops_nb.pipeline.params import ParamError, declared_params, resolve_step_params
from mlops_nb.pipeline.progress import Progress
from mlops_nb.pipeline.safe_yaml import read_yaml
from mlops_nb.pipeline.spec import Pipeline, load_pipeline

COPIED_UP_TO = 8 << 20       # project files up to this size are copied into the test's folder; bigger ones linked
_SKIPPED = {".mlops", ".git", ".venv", "venv", "node_modules", "__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
_GATE_CALL = re.compile(r"\bgate\s*\(|%mlops\s+gate\b")
_TABULAR = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class StepCheck:
    pipeline: str
    step: str
    status: str                  # passed | failed | skipped
    seconds: float = 0.0
    reason: str = ""             # one line: why it failed or was skipped
    details: str = ""            # the failing cell and its error, for the report


@dataclass
class PipelineTestReport:
    checks: list[StepCheck] = field(default_factory=list)
    seconds: float = 0.0
    kept: list[Path] = field(default_factory=list)   # the copies of projects kept: a step failed there

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status != "failed" for c in self.checks)

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)


def run_tests(paths: list[str | Path], *, registry_home: Path | None = None, jobs: int = 1,
                   engine: str | None = None, on_check: Callable[[StepCheck], None] | None = None,
                   keep: Path | None = None) -> PipelineTestReport:
    """Test each pipeline file (see the module); ``on_check`` hears of each step as it is judged.
    ``registry_home`` is the project's registry, where the outputs' schemas were recorded (default: the
    pipeline's own); ``keep`` keeps the test's folders under that path instead of deleting them (a
    pipeline with a failing step keeps its folder anyway: its executed notebooks are there)."""
    report = PipelineTestReport()
    started = time.monotonic()
    for path in paths:
        report.checks += _run_one(load_pipeline(path), registry_home, jobs, engine, keep, on_check, report.kept)
    report.seconds = time.monotonic() - started
    return report


def _run_one(pipeline: Pipeline, registry_home: Path | None, jobs: int, engine: str | None, keep: Path | None,
             on_check, kept: list[Path]) -> list[StepCheck]:
    from mlops_nb.pipeline.runner import RunOptions, run_pipeline

    spec = read_yaml(pipeline.path.read_text(encoding="utf-8"), pipeline.path.name)
    bad = _param_problems(pipeline)
    if bad:
        checks = [StepCheck(pipeline.name, s.name, "failed", reason=bad[s.name]) if s.name in bad else
                  StepCheck(pipeline.name, s.name, "skipped", reason="the pipeline cannot run: another step's "
                                                                      "params are wrong") for s in pipeline.steps]
        for check in checks:
            if on_check is not None:
                on_check(check)
        return checks
    recorded = _recorded_schemas(pipeline, registry_home)
    folder = Path(tempfile.mkdtemp(prefix=f"mlops-test-{pipeline.name}-", dir=keep))
    try:
        mirror = _mirror_project(pipeline, spec, folder / pipeline.root.name)
        home = mirror.parent / ".mlops"
        judge = _Judge(pipeline, mirror, home, recorded, on_check)
        with _throwaway_registry(home):
            try:
                result = run_pipeline(mirror, RunOptions(force=True, jobs=jobs, engine=engine, progress=judge,
                                                         trigger="test", run_name=f"{pipeline.name} test"), home=home)
            finally:
                judge.close()
        for step in pipeline.steps:  # steps the run never reached (it was stopped)
            if step.name not in judge.checks:
                judge.step_finished(result.steps[step.name])
        checks = [judge.checks[s.name] for s in pipeline.steps]
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if keep is None and all(c.status != "failed" for c in checks):
        shutil.rmtree(folder, ignore_errors=True)
    else:  # where the failing step's executed notebook is, for a person to open
        kept.append(folder)
    return checks


def _param_problems(pipeline: Pipeline) -> dict[str, str]:
    """step -> what is wrong with its params (every step checked, not only the first that is wrong)."""
    declared = {s.name: declared_params(s.notebook) for s in pipeline.steps}
    unused = [n for n in pipeline.test_params if not any(n in (d or {}) for d in declared.values())]
    if unused:
        raise ParamError(f"{pipeline.path.name}: test_params {', '.join(unused)}: no step of pipeline "
                         f"{pipeline.name!r} declares {'them' if len(unused) > 1 else 'it'}; declared: "
                         f"{', '.join(sorted({n for d in declared.values() for n in (d or {})})) or 'none'}")
    problems = {}
    for step in pipeline.steps:
        try:
            resolve_step_params(step.name, step.notebook, declared[step.name],
                                {**pipeline.params, **pipeline.test_params}, {**step.params, **step.test_params}, [])
        except MlopsError as exc:
            problems[step.name] = str(exc)
    return problems


def _mirror_project(pipeline: Pipeline, spec: dict, root: Path) -> Path:
    """A copy of the project for the test: folders made, files copied (big ones linked), the steps'
    declared outputs left out (the test writes its own), the test params put in, no registry setting."""
    outputs = {(pipeline.root / o).resolve() for s in pipeline.steps for o in s.outputs}
    for folder, dirs, files in os.walk(pipeline.root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED]
        here = Path(folder)
        target = root / here.relative_to(pipeline.root)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            source = here / name
            if source.resolve() in outputs or source == pipeline.path:
                continue
            if source.stat().st_size > COPIED_UP_TO:
                (target / name).symlink_to(source.resolve())
            else:
                shutil.copy2(source, target / name)
    _write_yaml(root / pipeline.path.name, _with_test_params(spec))
    settings = root / "mlops-nb.yaml"
    if settings.is_file():  # the throwaway registry, never the team's: drop its registry: line
        data = read_yaml(settings.read_text(encoding="utf-8"), settings.name) or {}
        if isinstance(data, dict) and data.pop("registry", None) is not None:
            _write_yaml(settings, data)
    return root / pipeline.path.name


def _with_test_params(spec: dict) -> dict:
    out = {k: v for k, v in spec.items() if k not in ("test_params", "executor")}
    out["params"] = {**(spec.get("params") or {}), **(spec.get("test_params") or {})}
    out["steps"] = []
    for raw in spec.get("steps", []):
        raw = dict(raw)
        raw["params"] = {**(raw.get("params") or {}), **(raw.pop("test_params", None) or {})}
        out["steps"].append(raw)
    return out


def _write_yaml(path: Path, data: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@contextmanager
def _throwaway_registry(home: Path) -> Iterator[None]:
    """The run's registry (and its kernels') is the SQLite file under ``home`` for the test's duration."""
    from mlops_nb.registry.home import ENV_VAR, REGISTRY_VAR

    saved = {k: os.environ.get(k) for k in (ENV_VAR, REGISTRY_VAR)}
    os.environ[ENV_VAR] = str(home)
    os.environ.pop(REGISTRY_VAR, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _recorded_schemas(pipeline: Pipeline, registry_home: Path | None) -> dict[tuple[str, str], tuple[dict, str]]:
    """(step, output) -> (its columns and their kinds, the run that wrote it) as the project's registry
    holds them: the newest finished run of each step's tabular outputs."""
    from mlops_nb.registry import artifacts, outputs
    from mlops_nb.registry.home import find_home, has_registry
    from mlops_nb.registry.store import open_store

    home = find_home(registry_home, start=pipeline.root)
    if not has_registry(home):
        return {}
    found = {}
    store = open_store(home)
    for step in pipeline.steps:
        for name in step.outputs:
            kind = _TABULAR.get(Path(name).suffix.lower())
            row = outputs.last_output(store, pipeline.name, step.name, name) if kind else None
            if row is None or not row["sha256"]:
                continue
            blob = artifacts.blob_path(store.artifacts_dir, row["sha256"])
            if blob.is_file():
                found[(step.name, name)] = (_schema(blob, kind), row["run_id"])
    return found


def _schema(path: Path, kind: str) -> dict[str, str]:
    """Columns and the kind of each (number, bool, text, datetime...), from a sample of the rows: a sample
    of 300 rows without a missing value must not differ from the whole file only by int versus float."""
    import pandas as pd

    if kind == "parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, nrows=1000, sep="\t" if kind == "tsv" else ",")
    names = {"i": "number", "u": "number", "f": "number", "b": "bool", "M": "datetime", "m": "duration",
             "O": "text", "U": "text", "S": "text"}
    return {str(c): names.get(dtype.kind, str(dtype)) for c, dtype in frame.dtypes.items()}


def _schema_change(recorded: dict[str, str], now: dict[str, str]) -> str | None:
    missing = [c for c in recorded if c not in now]
    added = [c for c in now if c not in recorded]
    changed = [f"{c} {recorded[c]} -> {now[c]}" for c in recorded if c in now and now[c] != recorded[c]]
    parts = ([f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"] if missing else []) + \
        ([f"new column{'s' if len(added) > 1 else ''} {', '.join(added)}"] if added else []) + \
        ([f"column kinds changed: {', '.join(changed)}"] if changed else [])
    return "; ".join(parts) or None


class _Judge(Progress):
    """Judges each step of the test run as it ends (``on_check`` hears of it at once)."""

    def __init__(self, pipeline: Pipeline, mirror: Path, home: Path, recorded: dict, on_check=None):
        self.pipeline, self.root, self.home, self.recorded = pipeline, mirror.parent, home, recorded
        self.on_check = on_check
        self.checks: dict[str, StepCheck] = {}
        self.store = None

    def step_finished(self, result) -> None:
        if result.name in self.checks or result.name not in {s.name for s in self.pipeline.steps}:
            return
        check = self.checks[result.name] = self._judge(result)
        if self.on_check is not None:
            self.on_check(check)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def _judge(self, result) -> StepCheck:
        check = StepCheck(self.pipeline.name, result.name, "passed", seconds=result.seconds)
        if result.status in ("skipped", "interrupted") and result.failure is None:
            check.status = "skipped"
            check.reason = result.reason or ("the run was interrupted" if result.status == "interrupted" else
                                             "a step before it failed")
            return check
        if result.failure is not None or not result.ok:
            check.status = "failed"
            check.reason = result.failure.summary() if result.failure else f"it ended {result.status}"
            check.details = result.failure.describe() if result.failure else ""
            return check
        step = self.pipeline.step(result.name)
        problems = []
        for output in step.outputs:
            kind = _TABULAR.get(Path(output).suffix.lower())
            if (step.name, output) not in self.recorded or not kind:
                continue
            schema, run_id = self.recorded[(step.name, output)]
            try:
                change = _schema_change(schema, _schema(self.root / output, kind))
            except Exception as exc:  # the file is there but unreadable: that is the finding
                change = f"cannot be read as {kind} ({str(exc).splitlines()[0][:120]})"
            if change:
                problems.append(f"output {output} does not match the schema recorded in run {run_id[:8]}: {change}")
        if _is_gate(step) and result.run_id:
            from mlops_nb.registry import gates, runs
            from mlops_nb.registry.store import open_store

            self.store = self.store or open_store(self.home)
            run = runs.get_run(self.store, result.run_id)
            if not gates.decisions_between(self.store, run.start_time, run.end_time or time.time()):
                problems.append("it calls mlops.gate but recorded no gate decision")
        if problems:
            check.status, check.reason = "failed", "; ".join(problems)
        return check


def _is_gate(step) -> bool:
    try:
        return any(_GATE_CALL.search(cell) for cell in versions.code_cells(
            json.loads(step.notebook.read_text(encoding="utf-8"))))
    except (OSError, ValueError):
        return False


def junit_xml(report: PipelineTestReport, path: Path) -> None:
    """The report as JUnit XML (what GitHub, GitLab and Jenkins show as test results)."""
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name="mlops-nb test", tests=str(len(report.checks)),
                       failures=str(report.count("failed")), skipped=str(report.count("skipped")), errors="0",
                       time=f"{report.seconds:.3f}")
    for check in report.checks:
        case = ET.SubElement(suite, "testcase", classname=check.pipeline, name=check.step,
                             time=f"{check.seconds:.3f}")
        if check.status == "failed":
            ET.SubElement(case, "failure", message=check.reason).text = check.details or check.reason
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.reason)
    tree = ET.ElementTree(ET.Element("testsuites"))
    tree.getroot().append(suite)
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise InvalidInputError(f"--junitxml {path}: cannot write it ({exc.strerror or exc})") from None
