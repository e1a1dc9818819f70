"""Real pipelines on real kernels through papermill: params, outputs, caching, failures."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import nbformat
import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb import run_pipeline
from mlops_nb.registry.store import open_store
from tests.notebooks_util import notebook_html, write_notebook
from tests.pipeline.conftest import write_raw
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def pytest_generate_tests(metafunc):
    """Every test here runs on pooled warm kernels; those marked ``fresh_too``, where how a kernel is started,
    stopped or killed matters, again on a fresh kernel per step; those marked ``on_dask`` with their steps as
    tasks on a Dask scheduler's worker processes. (What the cache, sweeps and reports do does not depend on
    how the kernel was started: one engine covers them.)"""
    marked = metafunc.definition.get_closest_marker
    engines = ["warm"] + (["fresh"] if marked("fresh_too") else []) + (["dask"] if marked("on_dask") else [])
    metafunc.parametrize("engine", engines, indirect=True)


@pytest.fixture(autouse=True)
def engine(request, monkeypatch):
    if request.param == "dask":
        monkeypatch.setenv("MLOPS_NB_EXECUTOR", request.getfixturevalue("scheduler"))
    else:
        monkeypatch.delenv("MLOPS_NB_EXECUTOR", raising=False)
    monkeypatch.setenv("MLOPS_NB_ENGINE", "warm" if request.param == "dask" else request.param)
    return request.param


def statuses(result):
    return {name: step.status for name, step in result.steps.items()}


@pytest.mark.on_dask
@pytest.mark.fresh_too
def test_first_run_injects_typed_params_and_passes_outputs(project, home):
    result = run_pipeline(params=["C=0.5"])
    assert result.ok, [s.failure.describe() for s in result.steps.values() if s.failure]
    assert statuses(result) == {"prepare": "ran", "train": "ran", "evaluate": "ran", "report": "ran"}
    train = mlops.get_run(result.steps["train"].run_id)
    assert train.params == {"C": 0.5, "max_iter": 100}  # the override, and the default it ran with
    assert train.kind == "step" and train.parent_id == result.run_id
    assert train.metrics == {"accuracy": 0.6}  # 0.5 + 0.5/10 + 50 rows/1000
    assert mlops.get_run(result.steps["prepare"].run_id).params == {"limit": 50}  # the pipeline's param
    evaluate = open_store(home).query("SELECT value FROM outputs WHERE run_id = ? AND name = 'passed'",
                                      (result.steps["evaluate"].run_id,))
    assert evaluate == [("true",)]
    assert (project / "report.txt").read_text() == "rows: 50 (weekly)"
    executed = nbformat.read(str(home / "runs" / result.run_id / "train.ipynb"), as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.tags)
    assert "C = 0.5" in injected.source
    assert "notebooks/train.ipynb" in train.artifacts or "notebooks/train.ipynb" in json.dumps(train.artifacts)
    pipeline_run = mlops.get_run(result.run_id)
    assert pipeline_run.kind == "pipeline" and pipeline_run.status == "finished"
    assert pipeline_run.tags["trigger"] == "manual"


@pytest.mark.on_dask
def test_unchanged_rerun_is_cached_and_changes_rerun_exactly_what_they_affect(project, home):
    assert run_pipeline().ok
    started = time.monotonic()
    second = run_pipeline()
    assert time.monotonic() - started < 2.0
    assert set(statuses(second).values()) == {"cached"}
    assert mlops.get_run(second.steps["train"].run_id).metrics == {"accuracy": 0.65}
    third = run_pipeline(params=["train.C=2"])
    assert statuses(third) == {"prepare": "cached", "train": "ran", "evaluate": "ran", "report": "cached"}
    write_raw(project, n=100, offset=1)  # new content, same size
    fourth = run_pipeline(params=["train.C=2"])
    # train reran on the new file but handed on the same accuracy, so evaluate's inputs did not change:
    assert statuses(fourth) == {"prepare": "ran", "train": "ran", "evaluate": "cached", "report": "ran"}
    forced = run_pipeline(params=["train.C=2"], force_steps=["report"])
    assert statuses(forced) == {"prepare": "cached", "train": "cached", "evaluate": "cached", "report": "ran"}


def test_a_rerun_where_every_step_is_cached_is_one_row_that_names_what_it_reused(project, home):
    first = run_pipeline()
    step_runs = len(mlops.search_runs("kind = 'step'"))
    again = run_pipeline()
    assert set(statuses(again).values()) == {"cached"}
    assert len(mlops.search_runs("kind = 'step'")) == step_runs == 4  # no step run added
    reused = json.loads(mlops.get_run(again.run_id).tags["reused"])
    assert reused == {name: step.run_id for name, step in first.steps.items()}
    assert {name: step.run_id for name, step in again.steps.items()} == reused  # the runs that computed them
    from mlops_nb.registry import runs
    listed = runs.recent_pipeline_runs(open_store(home), "churn")[0]  # the sidebar's Pipelines tab
    assert listed["run_id"] == again.run_id and [s["cached_from"] for s in listed["steps"]] == list(reused.values())
    # A rerun where one step runs records the cached ones too: the step that runs reads their outputs.
    third = run_pipeline(force_steps=["evaluate"])
    assert statuses(third) == {"prepare": "cached", "train": "cached", "evaluate": "ran", "report": "cached"}
    children = mlops.search_runs(f"parent_id = '{third.run_id}'")
    assert len(children) == 4 and "reused" not in mlops.get_run(third.run_id).tags
    assert mlops.get_run(third.steps["train"].run_id).tags["cached_from"] == first.steps["train"].run_id


@pytest.mark.on_dask
def test_deleted_output_file_means_the_step_runs_again(project, home):
    assert run_pipeline().ok
    (project / "report.txt").unlink()
    again = run_pipeline()
    assert statuses(again)["report"] == "ran" and statuses(again)["prepare"] == "cached"
    assert (project / "report.txt").exists()


@pytest.mark.on_dask
@pytest.mark.fresh_too
def test_failing_step_stops_its_dependents_and_others_continue(project, home):
    write_notebook(project / "notebooks" / "train.ipynb",
                   ["import mlops_nb as mlops\nmlops.log_metric('before', 1.0)", "x = 1\nraise ValueError(f'bad C {C}')"],
                   parameters="C = 0.1")
    result = run_pipeline()
    assert result.status == "failed"
    assert statuses(result) == {"prepare": "ran", "train": "failed", "evaluate": "skipped", "report": "ran"}
    failure = result.steps["train"].failure
    assert failure.ename == "ValueError" and failure.evalue == "bad C 1.0"
    assert "raise ValueError" in failure.source
    train = mlops.get_run(result.steps["train"].run_id)
    assert train.status == "failed" and train.error.startswith("ValueError: bad C 1.0")
    assert train.metrics == {"before": 1.0}
    executed = nbformat.read(str(failure.notebook), as_version=4)
    assert "papermill-error-cell-tag" in executed.cells[0].metadata.tags  # papermill's banner
    assert mlops.get_run(result.run_id).status == "failed"


@pytest.mark.on_dask
@pytest.mark.fresh_too
def test_retries_run_a_flaky_step_again(project, home):
    flaky = "import pathlib\nmarker = pathlib.Path('tried')\nif not marker.exists():\n    marker.touch()\n" \
            "    raise RuntimeError('first try fails')"
    write_notebook(project / "notebooks" / "flaky.ipynb", [flaky], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: flaky\nsteps:\n  - name: f\n    notebook: notebooks/flaky.ipynb\n"
                                           "    retries: 1\n")
    result = run_pipeline()
    assert result.ok and result.steps["f"].attempts == 2
    assert mlops.get_run(result.steps["f"].run_id).tags["attempts"] == "2"


@pytest.mark.fresh_too
def test_a_hanging_cell_is_ended_by_the_timeout(project, home):
    write_notebook(project / "notebooks" / "hang.ipynb", ["import time\ntime.sleep(60)"], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: hang\nsteps:\n  - name: h\n    notebook: notebooks/hang.ipynb\n"
                                           "    timeout: {cell: 2, step: 60}\n")
    started = time.monotonic()
    result = run_pipeline()
    assert time.monotonic() - started < 20
    assert result.status == "failed" and result.steps["h"].failure.ename == "Timeout"
    assert "time.sleep(60)" in (result.steps["h"].failure.source or "")
    assert "timed out (2 s per cell)" in result.steps["h"].failure.message  # the limit that ended it


@pytest.mark.on_dask
def test_independent_steps_run_in_parallel_with_jobs(project, home):
    sleepy = "import time\ntime.sleep(1.5)"
    for name in ("a", "b"):
        write_notebook(project / "notebooks" / f"{name}.ipynb", [sleepy], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: par\nsteps:\n  - name: a\n    notebook: notebooks/a.ipynb\n"
                                           "  - name: b\n    notebook: notebooks/b.ipynb\n")
    result = run_pipeline(jobs=2)
    assert result.ok
    a, b = (mlops.get_run(result.steps[n].run_id) for n in "ab")
    assert a.start_time < b.end_time and b.start_time < a.end_time  # they overlapped


@pytest.mark.on_dask
def test_cli_reports_the_failing_cell_not_a_papermill_traceback(project, home):
    write_notebook(project / "notebooks" / "train.ipynb", ["raise KeyError('no such column: age')"],
                   parameters="C = 0.1")
    result = CliRunner().invoke(cli, ["run", "--quiet"])
    assert result.exit_code == 1
    assert "step 'train' failed" in result.output and "raise KeyError('no such column: age')" in result.output
    assert "KeyError: 'no such column: age'" in result.output
    assert "PapermillExecutionError" not in result.output and "Traceback" not in result.output


def test_cli_run_json_and_lineage(project, home):
    result = CliRunner().invoke(cli, ["run", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "finished" and set(data["steps"]) == {"prepare", "train", "evaluate", "report"}
    shown = CliRunner().invoke(cli, ["runs", "show", data["steps"]["prepare"]["run_id"], "--json"])
    lineage = json.loads(shown.output)["lineage"]
    assert {(d["name"], d["role"]) for d in lineage["datasets"]} == {("data/raw.csv", "input"),
                                                                     ("data/prepared.csv", "output")}
    parent = json.loads(CliRunner().invoke(cli, ["runs", "show", data["run_id"], "--json"]).output)
    assert len(parent["lineage"]["children"]) == 4


@pytest.mark.on_dask
def test_sweep_runs_the_grid_as_siblings_and_names_the_best(project, home):
    assert run_pipeline().ok  # train reads data/prepared.csv, which prepare writes
    result = CliRunner().invoke(cli, ["sweep", "notebooks/train.ipynb", "-p", "C=0.1,2", "-p", "max_iter=1,2",
                                      "--jobs", "2", "--metric", "accuracy", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["points"]) == 4
    best = next(p for p in data["points"] if p["run_id"] == data["best_run"])
    assert best["params"]["C"] == 2.0
    parents = {mlops.get_run(p["run_id"]).parent_id for p in data["points"]}
    assert parents == {data["run_id"]}


def test_sweep_from_python_takes_a_dict_grid_and_a_project_folder(project, home, monkeypatch, tmp_path):
    first = run_pipeline()
    assert first.ok
    html = notebook_html(first)
    assert "pipeline" in html and "prepare" in html and "executed notebook" in html and "ran" in html
    monkeypatch.chdir(tmp_path)  # somewhere else: the project folder says where the sweep runs
    sweep = mlops.sweep("notebooks/train.ipynb", {"C": [0.1, 2]}, project=project, metric="accuracy")
    assert sweep.ok and [p["params"] for p in sweep.points] == [{"C": 0.1}, {"C": 2.0}]
    assert sweep.best["params"] == {"C": 2.0}
    assert list(sweep.table()["C"]) == [0.1, 2.0] and "accuracy" in sweep.table()
    assert "sweep: 2 points" in notebook_html(sweep) and "best {'C': 2.0}" in repr(sweep)
    with pytest.raises(mlops.MlopsError, match="has no param 'c'; its parameters cell declares: C, max_iter"):
        mlops.sweep("notebooks/train.ipynb", {"c": [1]}, project=project)
    with pytest.raises(mlops.MlopsError, match="the sweep of 'C' has no values"):
        mlops.sweep("notebooks/train.ipynb", {"C": []}, project=project)


@pytest.mark.fresh_too
def test_sigterm_stops_kernels_and_marks_runs_interrupted(project, home):
    write_notebook(project / "notebooks" / "hang.ipynb",
                   ["import pathlib, time\npathlib.Path('started').touch()\ntime.sleep(60)"], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: stop\nsteps:\n  - name: h\n    notebook: notebooks/hang.ipynb\n")
    proc = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "run", "--quiet"], cwd=project,
                            env=dict(os.environ, MLOPS_NB_HOME=str(home)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    store = open_store(home)
    wait_for(lambda: (project / "started").exists(), "the step's cell to start")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    kinds = dict(store.query("SELECT kind, status FROM runs"))
    assert kinds == {"pipeline": "interrupted", "step": "interrupted"}
    kernels = subprocess.run(["pgrep", "-f", "ipykernel_launcher.*" + str(home.parent)], capture_output=True)
    assert kernels.stdout == b""


def test_mlops_run_in_a_notebook_shows_an_updating_table(project, home):
    import papermill

    write_notebook(project / "driver.ipynb", ["%load_ext mlops_nb", "%mlops run"])
    papermill.execute_notebook(str(project / "driver.ipynb"), str(project / "driver-out.ipynb"),
                               kernel_name="python3", cwd=str(project), progress_bar=False)
    executed = nbformat.read(str(project / "driver-out.ipynb"), as_version=4)
    shown = json.dumps(executed.cells[1].outputs)
    assert "churn run" in shown and "prepare" in shown and "finished" in shown
    runs = mlops.search_runs("kind = 'pipeline'")
    assert list(runs["status"]) == ["finished"]


@pytest.mark.fresh_too
def test_a_kernel_that_cannot_start_fails_its_step_in_one_line(project, home, store):
    spec = (project / "pipeline.yaml").read_text()
    (project / "pipeline.yaml").write_text(spec.replace("    params: {C: 1.0}\n",
                                                        "    params: {C: 1.0}\n    kernel: no-such-kernel\n"))
    result = CliRunner().invoke(cli, ["run", "--quiet"])
    assert result.exit_code == 1, result.output
    assert "step 'train': " in result.output and "no kernel named 'no-such-kernel' is installed" in result.output
    assert "Traceback" not in result.output and "NoSuchKernel" not in result.output
    statuses = dict(store.query("SELECT COALESCE(step, kind), status FROM runs"))
    assert statuses == {"pipeline": "failed", "prepare": "finished", "train": "failed", "report": "finished"}


@pytest.mark.fresh_too
def test_a_param_reaches_papermill_through_few_calls_of_ours(project, home, monkeypatch):
    import papermill.parameterize

    original, seen = papermill.parameterize.parameterize_notebook, {}

    def ours(frame) -> list[str]:
        names = []
        while frame is not None:
            if frame.f_globals.get("__name__", "").startswith("mlops_nb"):
                names.append(frame.f_code.co_qualname)
            frame = frame.f_back
        return names

    def spy(nb, parameters, *args, **kwargs):
        if parameters.get("C") == 0.5:  # the train step, given -p train.C=0.5 as the float papermill writes
            main = threading.main_thread()
            seen["calls"] = ours(sys._getframe(1)) + (
                ours(sys._current_frames()[main.ident]) if threading.current_thread() is not main else [])
        return original(nb, parameters, *args, **kwargs)

    monkeypatch.setattr(papermill.parameterize, "parameterize_notebook", spy)
    result = CliRunner().invoke(cli, ["run", "-p", "train.C=0.5", "--quiet"])
    assert result.exit_code == 0, result.output
    # From the command's Group to papermill: the command, the one run verb, the scheduler, the step,
    # its attempt, the execution and the notebook's preparation (papermill's own CLI: 5-6 of its calls).
    assert len(seen["calls"]) <= 8, seen["calls"]
    assert "run_pipeline" in seen["calls"] and "run_command" in seen["calls"]


@pytest.mark.fresh_too
def test_two_pipelines_in_one_process_keep_to_their_own_folders(tmp_path, home):
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        (root / "nb").mkdir(parents=True)
        write_notebook(root / "nb" / "w.ipynb", ["import pathlib, time\ntime.sleep(0.5)\n"
                                                 "pathlib.Path('out.txt').write_text(who)"], parameters=f"who = '{name}'")
        (root / "pipeline.yaml").write_text(f"name: {name}\nsteps:\n  - name: w\n    notebook: nb/w.ipynb\n"
                                            "    outputs: [out.txt]\n")
        roots.append(root)
    here = os.getcwd()
    results = {}
    threads = [threading.Thread(target=lambda r=root: results.__setitem__(r.name, run_pipeline(r / "pipeline.yaml")))
               for root in roots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {name: r.status for name, r in results.items()} == {"a": "finished", "b": "finished"}
    assert [(root / "out.txt").read_text() for root in roots] == ["a", "b"]
    assert os.getcwd() == here  # the process's own folder never moved


def test_a_step_run_records_the_defaults_it_ran_with(project, home):
    result = run_pipeline()  # train's parameters cell: C = 0.1, max_iter = 100; pipeline.yaml sets C: 1.0
    train = mlops.get_run(result.steps["train"].run_id)
    assert train.params == {"C": 1.0, "max_iter": 100}
    assert mlops.get_run(result.steps["report"].run_id).params == {"title": "weekly"}
    assert train.tags["reason"] == "first run of this step"


def test_a_cell_timeout_from_the_terminal_prints_only_the_failure(project, home):
    write_notebook(project / "notebooks" / "hang.ipynb", ["import time\ntime.sleep(60)"], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: hang\nsteps:\n  - name: h\n    notebook: notebooks/hang.ipynb\n"
                                           "    timeout: {cell: 2}\n")
    done = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "run", "--quiet"], cwd=project,
                          env=dict(os.environ, MLOPS_NB_HOME=str(home)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "step 'h' timed out (2 s per cell)" in done.stderr
    assert "Task was destroyed" not in done.stderr and "Traceback" not in done.stderr, done.stderr
