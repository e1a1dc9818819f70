"""What a pipeline run leaves in the registry: the pipeline run, its step runs, their files and outputs.

A pipeline run is a run (kind ``pipeline``); each step is a child run (kind ``step``)
with its params, its notebook and the files it read and wrote (as datasets named by
their paths). A cached step run holds what the run it reuses handed on and measured.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops_nb.pipeline.execute import StepFailure
from mlops_nb.pipeline.spec import Pipeline, Step
from mlops_nb.pipeline.version import ARTIFACT as PIPELINE_VERSION, TAG as VERSION_TAG, pipeline_version
from mlops_nb.registry import artifacts, datasets, outputs, runs
from mlops_nb.registry.store import Store
from mlops_nb.registry.values import encode_param
from mlops_nb.tracking import environment


def create_pipeline_run(store: Store, pipeline: Pipeline, run_params: dict, trigger: str, tags: dict,
                        name: str | None) -> str:
    experiment_id = runs.ensure_experiment(store, pipeline.name)
    count = runs.count_pipeline_runs(store, pipeline.name)
    run_id, _ = runs.create_run(store, experiment_id=experiment_id, name=name or f"{pipeline.name}#{count + 1}",
                                kind="pipeline", git=environment.git_state(pipeline.root),
                                env=environment.python_environment(), source=str(pipeline.path),
                                pipeline=pipeline.name)
    params = [(run_id, *encode_param(k, v)) for k, v in run_params.items()]
    version = pipeline_version(pipeline)
    data = json.dumps(version, sort_keys=True).encode()
    sha, size = artifacts.put_bytes(store.artifacts_dir, data)
    runs.record_artifact(store, run_id, PIPELINE_VERSION, sha, size, kind="dict")
    all_tags = {"trigger": trigger, "pipeline_file": str(pipeline.path), VERSION_TAG: version["version"], **tags}
    runs.write_batch(store, params=params, tags=[(run_id, k, str(v)) for k, v in all_tags.items()])
    return run_id


def create_step_run(store: Store, pipeline: Pipeline, parent: str, step: Step, params: dict, key: str,
                    cached_from: str | None = None, why: str | None = None) -> str:
    """A step run; ``why`` says why it ran or what it reused (its ``reason`` tag)."""
    experiment_id = runs.ensure_experiment(store, pipeline.name)
    run_id, _ = runs.create_run(store, experiment_id=experiment_id, name=step.name, kind="step",
                                parent_id=parent, git=environment.git_state(pipeline.root),
                                env=environment.python_environment(), source=str(step.notebook),
                                pipeline=pipeline.name, step=step.name, cache_key=key, cached_from=cached_from)
    notebook = step.notebook.relative_to(pipeline.root) if step.notebook.is_relative_to(pipeline.root) \
        else step.notebook
    tags = [(run_id, "notebook", str(notebook))] + ([(run_id, "reason", why)] if why else [])
    runs.write_batch(store, params=[(run_id, *encode_param(k, v)) for k, v in params.items()], tags=tags)
    return run_id


def record_cached(store: Store, pipeline: Pipeline, parent: str, step: Step, params: dict, key: str,
                  cached_from: str, input_files: list[Path], why: str | None = None) -> str:
    """A finished step run that reuses ``cached_from`` (the run that really computed them, never another cached
    run, so one hop always finds it): its outputs, metrics, artifacts and files."""
    run_id = create_step_run(store, pipeline, parent, step, params, key, cached_from=cached_from, why=why)
    outputs.copy_outputs(store, cached_from, run_id)
    runs.copy_results(store, cached_from, run_id)
    runs.write_batch(store, tags=[(run_id, "cached_from", cached_from)])
    record_files(store, run_id, pipeline.root, input_files, "input")
    record_files(store, run_id, pipeline.root, [pipeline.root / o for o in step.outputs], "output")
    runs.finish_run(store, run_id, "finished")
    return run_id


def record_reused(store: Store, run_id: str, reused: dict[str, str]) -> None:
    """A pipeline run where no step ran: its ``reused`` tag maps each step to the run it reused (JSON),
    instead of a step run per step."""
    runs.write_batch(store, tags=[(run_id, "reused", json.dumps(reused))])


def collect_outputs(store: Store, pipeline: Pipeline, step: Step, run_id: str) -> StepFailure | None:
    """Store the files a step declared as outputs; a failure when one of them was not written."""
    missing = [o for o in step.outputs if not (pipeline.root / o).is_file()]
    if missing:
        return StepFailure(step.name, f"step {step.name!r} finished but did not write its output "
                                      f"{', '.join(missing)} (declared in {pipeline.path.name})")
    files = [pipeline.root / o for o in step.outputs]
    for name, path in zip(step.outputs, files):
        sha, _ = artifacts.put_file(store.artifacts_dir, path)
        outputs.record_output(store, run_id, name, "file", sha256=sha, path=str(path.resolve()))
        outputs.fingerprint_file(store, path)
    record_files(store, run_id, pipeline.root, files, "output")
    return None


def record_files(store: Store, run_id: str, root: Path, files: list[Path], role: str) -> None:
    """Lineage: each file a step read or wrote, as a dataset named by its path."""
    for path in files:
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        datasets.record_dataset(store, run_id, name=name, fingerprint=outputs.fingerprint_file(store, path),
                                role=role, n_rows=None, n_cols=None, schema=None, profile=None)
