"""``pipeline.yaml`` -> typed objects, with errors that name the file, the step and the field.

    name: churn
    params: {seed: 0}              # to every step whose parameters cell declares the name
    test_params: {rows: 300}       # `mlops-nb test`: a small sample, for every step declaring the name
    steps:
      - name: prepare
        notebook: notebooks/prepare.ipynb
        inputs: [data/raw.csv]     # files (globs allowed), step names, step.output, or features:VIEW
        outputs: [data/prepared.csv]
      - name: train
        notebook: notebooks/train.ipynb
        params: {C: 1.0}           # step params override pipeline params
        test_params: {n_estimators: 5}   # this step's, for `mlops-nb test`
        inputs: [data/prepared.csv]
        retries: 1
        timeout: 600               # seconds for the whole step; or {cell: 60, step: 600}
        kernel: python3
        engine: warm               # warm (a pooled kernel, the default) or fresh (a new kernel)
        isolation: namespace       # namespace (reset between runs) or kernel (never-used kernel)
        resources: {memory: 4GiB, gpu: 1}   # on Dask: only workers that offer these run the step
    preload: [sklearn]             # modules warm kernels import ahead (besides the notebooks' imports)
    executor: local                # local (the default), dask (a LocalCluster) or tcp://HOST:PORT (a scheduler)
    notify:                        # events: fired, failed, gate_failed, promoted, rolled_back (on: all by default)
      - {webhook: "https://hooks.slack.com/services/...", format: slack, on: [failed, gate_failed]}
      - {command: "./page-someone.sh", on: [failed], retries: 3, backoff: 1}
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb.errors import NotFoundError
from mlops_nb.pipeline.safe_yaml import MAX_YAML_VALUES, SpecError, read_yaml  # noqa: F401 (their home)

PIPELINE_FIELDS = ("name", "params", "steps", "triggers", "preload", "executor", "description", "test_params", "notify",
                   "features")  # features: feature views (mlops_nb.features.views reads them)
FEATURE_INPUT = "features:"  # an input naming a feature view: its newest write is part of the cache key
STEP_FIELDS = ("name", "notebook", "params", "test_params", "inputs", "outputs", "after", "retries", "timeout", "kernel",
               "engine", "isolation", "cache", "resources", "description")
ENGINES = ("warm", "fresh")
ISOLATIONS = ("namespace", "kernel")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Step:
    name: str
    notebook: Path                 # absolute
    params: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    retries: int = 0
    timeout: float | None = None   # the whole step, seconds
    cell_timeout: float | None = None
    kernel: str | None = None
    engine: str | None = None      # None: the command's choice
    isolation: str = "namespace"
    cache: bool = True             # False: always runs (it reads what no declared input shows: a database, an API)
    resources: dict[str, float] = field(default_factory=dict)   # Dask worker resources (memory in bytes)
    test_params: dict[str, Any] = field(default_factory=dict)   # what `mlops-nb test` runs it with (fast)


@dataclass(frozen=True)
class Pipeline:
    name: str
    path: Path                     # the pipeline.yaml file
    params: dict[str, Any]
    steps: tuple[Step, ...]
    triggers: tuple = ()
    preload: tuple[str, ...] = ()
    executor: str | None = None    # None: the command's choice (local unless told)
    test_params: dict[str, Any] = field(default_factory=dict)   # `mlops-nb test`: for every step declaring one
    notify: tuple = ()             # notify.Target: where its events (failed, promoted...) are sent

    @property
    def root(self) -> Path:
        return self.path.parent

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise NotFoundError(f"pipeline {self.name!r} has no step {name!r}{suggest(name, [s.name for s in self.steps])};"
                            f" its steps: {', '.join(s.name for s in self.steps)}")

    def upstream(self, step: Step) -> list[str]:
        """Names of the steps ``step`` needs: named in ``after`` or ``inputs``, or producing a file it reads."""
        producers = {out: s.name for s in self.steps for out in s.outputs}
        names = {s.name for s in self.steps}
        needed: list[str] = []
        for item in (*step.after, *step.inputs):
            head = item.split(".", 1)[0] if "." in item and item.split(".", 1)[0] in names else item
            owner = head if head in names else producers.get(item)
            if owner and owner != step.name and owner not in needed:
                needed.append(owner)
        return needed

    def file_inputs(self, step: Step) -> list[str]:
        names = {s.name for s in self.steps}
        return [i for i in step.inputs if i not in names and i.split(".", 1)[0] not in names
                and not i.startswith(FEATURE_INPUT)]

    def feature_inputs(self, step: Step) -> list[str]:
        """The feature views a step reads (``features:VIEW`` inputs): a new write of one reruns the step."""
        return [i[len(FEATURE_INPUT):] for i in step.inputs if i.startswith(FEATURE_INPUT)]


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def project_pipelines(folder: str | Path) -> list[Path]:
    """The pipeline files of a project folder, known by their content (a ``steps:`` list of notebooks), not
    their name: ``pipeline.yaml`` first, then the others (``monitor.yaml``...) by name."""
    folder = Path(folder)
    found = [p for p in sorted(folder.glob("*.y*ml")) if p.suffix in (".yaml", ".yml") and is_pipeline_file(p)]
    return sorted(found, key=lambda p: (p.name != "pipeline.yaml", p.name))


def is_pipeline_file(path: Path) -> bool:
    """Whether a YAML file reads as a pipeline, judged cheaply from its text (it is loaded only when used)."""
    try:
        if not path.is_file() or path.stat().st_size > 1_000_000:
            return False
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"^steps\s*:", text, re.MULTILINE)) and "notebook:" in text


def load_pipeline(path: str | Path = "pipeline.yaml") -> Pipeline:
    """Read and check a pipeline file; every problem is a SpecError naming where it is."""
    path = Path(path).resolve()
    if path.is_dir():
        path = path / "pipeline.yaml"
    if not path.is_file():
        raise NotFoundError(f"no pipeline file {path}: create one (see `mlops-nb help pipeline`) or pass its path")
    try:
        data = read_yaml(path.read_text(encoding="utf-8"), path.name)
    except UnicodeDecodeError:
        raise SpecError(f"{path.name}: not a text file (not UTF-8)") from None
    return parse_pipeline(data, path)


def parse_pipeline(data: Any, path: Path) -> Pipeline:
    where = path.name
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping with name, params and steps, got {type(data).__name__}")
    _unknown_fields(data, PIPELINE_FIELDS, where)
    name = data.get("name") or path.parent.name
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}: field 'name' must be letters, digits, '_' or '-', got {name!r}")
    params = _mapping(data.get("params"), f"{where}: field 'params'")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise SpecError(f"{where}: field 'steps' must be a non-empty list of steps")
    steps = [_parse_step(raw, i, path) for i, raw in enumerate(raw_steps)]
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise SpecError(f"{where}: step name {step.name!r} is used twice; step names must be unique")
        seen.add(step.name)
    from mlops_nb.pipeline.notify import parse_notify
    from mlops_nb.pipeline.trigger_spec import parse_triggers

    pipeline = Pipeline(name=name, path=path, params=params, steps=tuple(steps),
                        triggers=tuple(parse_triggers(data.get("triggers"), where)),
                        preload=_strings(data.get("preload"), f"{where}: field 'preload'"),
                        executor=_executor(data.get("executor"), f"{where}: field 'executor'"),
                        test_params=_mapping(data.get("test_params"), f"{where}: field 'test_params'"),
                        notify=parse_notify(data.get("notify"), where))
    for trigger in pipeline.triggers:
        step = trigger.options.get("step") if trigger.kind == "performance" else None
        if step and not trigger.options.get("pipeline") and step not in seen:
            raise SpecError(f"{where}: trigger {trigger.key}, field 'step': no step {step!r}{suggest(step, seen)}; "
                            "name one of this pipeline's steps, or add pipeline: <name> for another pipeline's")
        unknown = [s for s in trigger.rerun if s != "all" and s not in seen]
        if unknown:
            raise SpecError(f"{where}: trigger {trigger.key}, field 'rerun': no step {unknown[0]!r}"
                            f"{suggest(unknown[0], seen)}; give 'all' or a list of step names")
    for step in steps:
        for item in (*step.after, *step.inputs):
            if item.split(".", 1)[0] == step.name and item not in step.outputs:
                raise SpecError(f"{where}: step {step.name!r} cannot wait for itself ({item!r} in its "
                                f"{'after' if item in step.after else 'inputs'}); name the step it needs")
        for item in step.after:
            if item not in seen:
                raise SpecError(f"{where}: step {step.name!r}, field 'after': no step {item!r}"
                                f"{suggest(item, seen)}")
    order_steps(pipeline)  # raises on a cycle
    return pipeline


def _parse_step(raw: Any, index: int, path: Path) -> Step:
    where = f"{path.name}: step {index + 1}"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping with at least name and notebook, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}: field 'name' must be letters, digits, '_' or '-', got {name!r}")
    where = f"{path.name}: step {name!r}"
    _unknown_fields(raw, STEP_FIELDS, where)
    notebook = raw.get("notebook")
    if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
        raise SpecError(f"{where}, field 'notebook': give the path of an .ipynb file, got {notebook!r}")
    notebook_path = (path.parent / notebook).resolve()
    if not notebook_path.is_file():
        nearby = [str(p.relative_to(path.parent)) for p in path.parent.rglob("*.ipynb")
                  if ".mlops" not in p.parts and ".ipynb_checkpoints" not in p.parts]
        raise SpecError(f"{where}, field 'notebook': {notebook} does not exist{suggest(notebook, nearby)}")
    timeout, cell_timeout = _timeouts(raw.get("timeout"), where)
    retries = raw.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise SpecError(f"{where}, field 'retries': expected a whole number >= 0, got {retries!r}")
    kernel = raw.get("kernel")
    if kernel is not None and not isinstance(kernel, str):
        raise SpecError(f"{where}, field 'kernel': expected a kernel name such as python3, got {kernel!r}")
    engine, isolation = raw.get("engine"), raw.get("isolation", "namespace")
    if engine is not None and engine not in ENGINES:
        raise SpecError(f"{where}, field 'engine': expected one of {', '.join(ENGINES)}, got {engine!r}"
                        f"{suggest(str(engine), ENGINES)}")
    if isolation not in ISOLATIONS:
        raise SpecError(f"{where}, field 'isolation': expected one of {', '.join(ISOLATIONS)}, got {isolation!r}"
                        f"{suggest(str(isolation), ISOLATIONS)}")
    cache = raw.get("cache", True)
    if not isinstance(cache, bool):
        raise SpecError(f"{where}, field 'cache': true (reuse an unchanged step's results) or false (always run "
                        f"it, e.g. when it reads a database or an API), got {cache!r}")
    return Step(name=name, notebook=notebook_path, params=_mapping(raw.get("params"), f"{where}, field 'params'"),
                inputs=_strings(raw.get("inputs"), f"{where}, field 'inputs'"),
                outputs=_strings(raw.get("outputs"), f"{where}, field 'outputs'"),
                after=_strings(raw.get("after"), f"{where}, field 'after'"),
                retries=retries, timeout=timeout, cell_timeout=cell_timeout, kernel=kernel, engine=engine,
                isolation=isolation, cache=cache, resources=_resources(raw.get("resources"), f"{where}, field 'resources'"),
                test_params=_mapping(raw.get("test_params"), f"{where}, field 'test_params'"))


def check_executor(value: Any, where: str) -> str:
    """``local``, ``dask`` or a scheduler's ``tcp://HOST:PORT``; a one-line error for anything else."""
    if isinstance(value, str) and (value in ("local", "dask") or re.fullmatch(r"(tcp|tls)://[^\s/:]+:\d+", value)):
        return value
    raise SpecError(f"{where}: expected local, dask or a Dask scheduler's address tcp://HOST:PORT, got {value!r}")


def _executor(value: Any, where: str) -> str | None:
    return None if value is None else check_executor(value, where)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> float | None:
    """Bytes from ``4GiB``, ``512 MB``, ``2G`` or a number; None when it is not a size."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    number, unit, binary = match.groups()
    return float(number) * (1024 if binary else 1000) ** " kmgt".index(unit.lower() or " ")


def _resources(value: Any, where: str) -> dict[str, float]:
    """``{memory: 4GiB, gpu: 1}``: what a Dask worker must offer to run the step (memory as a size)."""
    out: dict[str, float] = {}
    for name, amount in _mapping(value, where).items():
        number = parse_size(amount) if name == "memory" else (
            float(amount) if isinstance(amount, (int, float)) and not isinstance(amount, bool) and amount > 0 else None)
        if number is None:
            example = "a size such as 4GiB or 512MB" if name == "memory" else "a number > 0, e.g. 1"
            raise SpecError(f"{where}: {name!r} must be {example}, got {amount!r}")
        out[name] = number
    return out


def _timeouts(value: Any, where: str) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value), None
    if isinstance(value, dict):
        _unknown_fields(value, ("cell", "step"), f"{where}, field 'timeout'")
        out = []
        for key in ("step", "cell"):
            item = value.get(key)
            if item is not None and (not isinstance(item, (int, float)) or isinstance(item, bool) or item <= 0):
                raise SpecError(f"{where}, field 'timeout.{key}': expected seconds > 0, got {item!r}")
            out.append(None if item is None else float(item))
        return out[0], out[1]
    raise SpecError(f"{where}, field 'timeout': expected seconds (e.g. 600) or {{cell: 60, step: 600}}, got {value!r}")


def _unknown_fields(data: dict, known, where: str) -> None:
    for key in data:
        if key not in known:
            raise SpecError(f"{where}: unknown field {key!r}{suggest(str(key), known)}; "
                            f"known fields: {', '.join(known)}")


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SpecError(f"{where}: expected a mapping of names to values, e.g. {{C: 1.0}}, got {value!r}")
    return dict(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{where}: expected a list of names or paths, got {value!r}")
    return tuple(value)


def order_steps(pipeline: Pipeline) -> list[Step]:
    """Steps in dependency order (stable: file order among independent steps)."""
    remaining = {s.name: set(pipeline.upstream(s)) for s in pipeline.steps}
    ordered: list[Step] = []
    while remaining:
        ready = [s for s in pipeline.steps if s.name in remaining and not remaining[s.name]]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise SpecError(f"{pipeline.path.name}: the steps {cycle} depend on each other in a cycle; "
                            "check their inputs, outputs and after fields")
        for step in ready:
            ordered.append(step)
            del remaining[step.name]
        for needs in remaining.values():
            needs.difference_update(s.name for s in ready)
    return ordered
