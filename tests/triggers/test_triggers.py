"""Each trigger kind against a real pipeline: fires when it should, not when it should not."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlops_nb as mlops
from mlops_nb import run_pipeline
from mlops_nb.pipeline.lock import PipelineBusy, PipelineLock
from mlops_nb.pipeline.spec import SpecError, load_pipeline
from mlops_nb.registry import triggers as trigger_store
from mlops_nb.registry.store import open_store
from mlops_nb.show.pipeline_views import CheckView
from mlops_nb.triggers.check import check_pipeline
from tests.notebooks_util import notebook_html, write_notebook
from tests.waiting import age, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.backends]  # on the SQLite file and on PostgreSQL

MONITOR = "import mlops_nb as mlops\nmlops.output('accuracy', accuracy)"


@pytest.fixture
def project(tmp_path, home, monkeypatch):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "data" / "incoming").mkdir(parents=True)
    write_notebook(root / "notebooks" / "monitor.ipynb", [MONITOR], parameters="accuracy = 0.9")
    monkeypatch.chdir(root)
    return root


def write_pipeline(root, triggers, params="{accuracy: 0.9}"):
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        name: watched
        steps:
          - name: monitor
            notebook: notebooks/monitor.ipynb
            params: {params}
        triggers:
        """) + textwrap.indent(textwrap.dedent(triggers), "  "))


def pipeline_runs(home):
    return open_store(home).query("SELECT id, status, start_time, end_time FROM runs WHERE kind = 'pipeline' "
                                  "ORDER BY start_time")


def test_schedule_fires_when_due_with_a_fake_clock(project, home):
    write_pipeline(project, '- schedule: {cron: "0 3 * * 1", timezone: UTC}\n')
    monday_noon = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert not check_pipeline(now=monday_noon).fired                      # baseline
    assert not check_pipeline(now=monday_noon + timedelta(days=6)).fired  # Sunday noon: not due
    due = check_pipeline(now=datetime(2026, 11, 30, 3, 0, 30, tzinfo=timezone.utc))
    assert [f.trigger.kind for f in due.fired] == ["schedule"] and due.runs[0].ok
    assert due.fired[0].evidence["due"] == "2026-11-30T03:00:00+00:00"
    assert not check_pipeline(now=datetime(2026, 11, 30, 3, 5, tzinfo=timezone.utc)).fired
    event = trigger_store.history(open_store(home), "watched")[0]
    assert event["status"] == "started" and event["run_id"] == due.runs[0].run_id
    assert mlops.get_run(due.runs[0].run_id).tags["trigger"] == "schedule"


def test_new_data_fires_on_new_changed_and_removed_files_only(project, home):
    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 0}\n')
    incoming = project / "data" / "incoming"
    (incoming / "a.csv").write_text("x\n1\n")
    assert not check_pipeline().fired                          # baseline
    assert not check_pipeline().fired                          # nothing changed
    (incoming / "b.csv").write_text("x\n2\n")
    added = check_pipeline()
    assert added.fired[0].evidence["added"] == ["data/incoming/b.csv"] and added.runs[0].ok
    (incoming / "a.csv").write_text("x\n1\n3\n")
    assert check_pipeline().fired[0].evidence["changed"] == ["data/incoming/a.csv"]
    (incoming / "b.csv").unlink()
    assert check_pipeline().fired[0].evidence["removed"] == ["data/incoming/b.csv"]
    assert not check_pipeline().fired


def test_a_file_still_being_written_waits_for_its_settle_time(project, home):
    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 30}\n')
    assert not check_pipeline().fired
    (project / "data" / "incoming" / "fresh.csv").write_text("x\n1\n")
    result = check_pipeline()
    assert not result.fired and "settle" in result.notes["new_data#1"]


def test_drift_fires_on_a_shift_and_not_on_a_resample(project, home):
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)}).to_csv(project / "data" / "train.csv",
                                                                                index=False)
    write_pipeline(project, '- drift: {reference: data/train.csv, current: "data/incoming/*.csv", settle: 0}\n')
    pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)}).to_csv(
        project / "data" / "incoming" / "week1.csv", index=False)
    assert not check_pipeline().fired
    pd.DataFrame({"a": rng.normal(2, 1, 2000), "b": rng.normal(2, 1, 2000)}).to_csv(
        project / "data" / "incoming" / "week1.csv", index=False)
    result = mlops.check_triggers()
    assert len(result.fired) == 1 and result.runs[0].ok
    evidence = result.fired[0].evidence
    assert evidence["drifted"] and evidence["share"] == 1.0 and set(evidence["drifted_columns"]) == {"a", "b"}
    assert "<b>fired</b>" in notebook_html(result) and "dataset drift: 100%" in notebook_html(result)
    history = mlops.trigger_history("watched")
    assert list(history["kind"]) == ["drift"] and history.loc[0, "run_id"] == result.runs[0].run_id
    assert history.loc[0, "evidence"]["share"] == 1.0 and history.loc[0, "status"] == "started"


def test_performance_fires_below_the_rule_once_per_observation(project, home):
    write_pipeline(project, "- performance: {step: monitor, metric: accuracy, below: 0.85}\n")
    assert run_pipeline().ok                                   # accuracy 0.9
    assert not check_pipeline().fired
    assert run_pipeline(params=["accuracy=0.7"]).ok
    result = check_pipeline()
    assert len(result.fired) == 1 and result.fired[0].evidence["value"] == 0.7
    assert "0.7 is below 0.85" in result.fired[0].reason
    assert not check_pipeline().fired                          # the same observation is not judged twice


def test_a_broken_trigger_is_reported_and_the_others_still_fire(project, home):
    write_pipeline(project, '- drift: {reference: data/missing.csv, current: "data/incoming/*.csv", settle: 0}\n'
                            '- new_data: {paths: ["data/incoming/*.csv"], settle: 0}\n')
    (project / "data" / "incoming" / "a.csv").write_text("x\n1\n")
    check_pipeline()
    (project / "data" / "incoming" / "b.csv").write_text("x\n2\n")
    result = check_pipeline()
    assert "reference data/missing.csv does not exist" in result.errors["drift#1"]
    assert [f.trigger.key for f in result.fired] == ["new_data#2"] and result.runs[0].ok


def test_trigger_spec_errors_name_the_trigger_and_field(project):
    write_pipeline(project, '- schedule: "every monday"\n')
    with pytest.raises(SpecError, match=r"trigger 1 \(schedule\): 'every monday' is not a cron expression"):
        load_pipeline()
    write_pipeline(project, "- new_dta: [a]\n")
    with pytest.raises(SpecError, match="unknown trigger 'new_dta' \\(did you mean 'new_data'\\?\\)"):
        load_pipeline()


def test_manual_runs_are_recorded_and_one_run_at_a_time(project, home):
    write_pipeline(project, "[]\n")
    result = run_pipeline()
    event = trigger_store.history(open_store(home), "watched")[0]
    assert (event["kind"], event["status"], event["run_id"]) == ("manual", "manual", result.run_id)
    with PipelineLock(home, "watched"):
        with pytest.raises(PipelineBusy, match="already running"):
            run_pipeline()


STORM_NOTEBOOK = "import time\ntime.sleep(2)"


def test_a_storm_of_new_files_starts_one_run_and_at_most_one_follow_up(project, home):
    write_notebook(project / "notebooks" / "monitor.ipynb", [STORM_NOTEBOOK], parameters="accuracy = 0.9")
    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 0.5}\n')
    env = dict(os.environ, MLOPS_NB_HOME=str(home))
    watcher = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "watch", "--interval", "0.3"], cwd=project,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: trigger_store.get_state(open_store(home), "watched", "new_data#1"),
                 "the watcher to take its baseline")
        for i in range(100):
            (project / "data" / "incoming" / f"f{i:03d}.csv").write_text(f"x\n{i}\n")

        def storm_handled():
            store = open_store(home)
            events = trigger_store.history(store, "watched")
            counted = sum(e["evidence"]["counts"]["added"] for e in events if e["status"] != "pending")
            return counted == 100 and all(r[1] != "running" for r in pipeline_runs(home))

        wait_for(storm_handled, "every new file to be counted and the runs to end", timeout=90)
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=30)
    runs = pipeline_runs(home)
    assert 1 <= len(runs) <= 2, (runs, out, err)
    assert all(status == "finished" for _, status, _, _ in runs)
    for earlier, later in zip(runs, runs[1:]):
        assert earlier[3] <= later[2]                          # never two at once
    events = trigger_store.history(open_store(home), "watched")
    assert {e["status"] for e in events} <= {"started", "coalesced"}
    assert sum(e["evidence"]["counts"]["added"] for e in events) == 100


def test_a_killed_watcher_leaves_no_stale_lock_and_its_run_interrupted(project, home):
    write_notebook(project / "notebooks" / "monitor.ipynb", ["import time\ntime.sleep(60)"],
                   parameters="accuracy = 0.9")
    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 0}\n')
    check_pipeline()  # baseline
    (project / "data" / "incoming" / "a.csv").write_text("x\n1\n")
    env = dict(os.environ, MLOPS_NB_HOME=str(home))
    watcher = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "watch", "--interval", "0.3"], cwd=project,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: open_store(home).query("SELECT 1 FROM runs WHERE kind = 'step' AND status = 'running'"),
             "the step to start")
    watcher.send_signal(signal.SIGKILL)
    watcher.wait(timeout=10)
    lock = PipelineLock(home, "watched")
    # The dead watcher's lock is gone: at once for a file lock, once PostgreSQL sees its session end.
    wait_for(lock.acquire, "the killed watcher's lock to be released", timeout=10)
    lock.release()
    mlops.search_runs()  # reaps runs whose process died
    statuses = dict(open_store(home).query("SELECT kind, status FROM runs"))
    assert statuses == {"pipeline": "interrupted", "step": "interrupted"}


def test_watch_on_stop_interrupt_stops_the_running_pipeline(project, home):
    write_notebook(project / "notebooks" / "monitor.ipynb",
                   ["import pathlib, time\npathlib.Path('started').touch()\ntime.sleep(60)"], parameters="accuracy = 0.9")
    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 0}\n')
    check_pipeline()
    (project / "data" / "incoming" / "a.csv").write_text("x\n1\n")
    watcher = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "watch", "--interval", "0.3",
                                "--on-stop", "interrupt"], cwd=project, env=dict(os.environ, MLOPS_NB_HOME=str(home)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (project / "started").exists(), "the step's cell to start")
    watcher.send_signal(signal.SIGTERM)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0 and "watcher stopped" in out, err
    assert "watched: new_data#1: new data in data/incoming/*.csv" in out  # says what it watches
    assert dict(open_store(home).query("SELECT kind, status FROM runs")) == {"pipeline": "interrupted",
                                                                            "step": "interrupted"}


def test_cli_lists_triggers_and_their_history(project, home):
    from click.testing import CliRunner

    from mlops_nb.cli import cli

    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 0}\n- schedule: "0 3 * * 1"\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["triggers", "check"]).exit_code == 0
    (project / "data" / "incoming" / "a.csv").write_text("x\n1\n")
    result = runner.invoke(cli, ["triggers", "check", "--quiet"])
    assert result.exit_code == 0 and "new_data#1 fired: data in data/incoming/*.csv: 1 new file(s)" in result.output
    listing = runner.invoke(cli, ["triggers", "ls"])
    assert "schedule '0 3 * * 1'" in listing.output and "next at" in listing.output
    history = runner.invoke(cli, ["triggers", "history", "--json"])
    import json

    events = json.loads(history.output)
    assert events[0]["status"] == "started" and events[0]["evidence"]["added"] == ["data/incoming/a.csv"]
    from mlops_nb.registry.process import hostname, user

    assert (events[0]["user"], events[0]["host"]) == (user(), hostname())  # who fired it, from where


def test_a_firing_whose_run_was_killed_fires_again(project, home):
    # The step hangs until the test has killed the watcher once; the retry then runs through.
    write_notebook(project / "notebooks" / "monitor.ipynb",
                   ["import pathlib, time\nif not pathlib.Path('killed').exists():\n"
                    "    pathlib.Path('started').touch()\n    time.sleep(60)"], parameters="accuracy = 0.9")
    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 0}\n')
    check_pipeline()  # baseline
    (project / "data" / "incoming" / "a.csv").write_text("x\n1\n")
    watcher = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "watch", "--interval", "0.3"], cwd=project,
                               env=dict(os.environ, MLOPS_NB_HOME=str(home)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (project / "started").exists(), "the triggered run's step to start")
    watcher.send_signal(signal.SIGKILL)  # a reboot, the OOM killer
    watcher.wait(timeout=10)
    (project / "killed").touch()
    result = check_pipeline()  # nothing new fired, but the interrupted firing is not lost
    assert not result.fired and len(result.retried) == 1 and len(result.runs) == 1 and result.runs[0].ok
    first, retry = sorted(trigger_store.history(open_store(home), "watched"), key=lambda e: e["id"])
    assert first["status"] == "retried" and first["kind"] == "new_data"
    assert retry["retry_of"] == first["id"] and retry["status"] == "started" and retry["run_id"] == result.runs[0].run_id
    assert retry["evidence"] == first["evidence"]
    assert not check_pipeline().runs  # done: nothing fires twice


def test_a_measurement_repeated_by_cached_runs_is_judged_once(project, home):
    write_pipeline(project, "- performance: {step: monitor, metric: accuracy, below: 0.95}\n")
    fired = []
    for _ in range(4):  # runs 2-4 are cached: they repeat run 1's measurement
        assert run_pipeline().ok
        fired.append(len(check_pipeline(run=False).fired))
    assert fired == [1, 0, 0, 0]
    steps = mlops.search_runs("kind = 'step'")
    assert len(steps) == 1  # the cached reruns added no step runs: each names the one it reused
    reruns = mlops.search_runs("kind = 'pipeline'")["run_id"][:-1]
    assert {json.loads(mlops.get_run(r).tags["reused"])["monitor"] for r in reruns} == {steps["run_id"].iloc[0]}


def test_a_firing_reruns_the_steps_its_trigger_names(project, home):
    write_notebook(project / "notebooks" / "other.ipynb", ["import mlops_nb as mlops\nmlops.log_metric('m', 1)"],
                   parameters="n = 1")
    (project / "pipeline.yaml").write_text(textwrap.dedent("""\
        name: watched
        steps:
          - name: monitor
            notebook: notebooks/monitor.ipynb
          - name: other
            notebook: notebooks/other.ipynb
          - name: fetch
            notebook: notebooks/other.ipynb
            cache: false
        triggers:
          - schedule: {cron: "0 3 * * 1", timezone: UTC, rerun: [monitor]}
        """))
    assert run_pipeline().ok
    monday = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    check_pipeline(now=monday)  # the schedule's baseline
    result = check_pipeline(now=datetime(2026, 11, 30, 3, 0, 30, tzinfo=timezone.utc))
    steps = result.runs[0].steps
    assert {name: s.status for name, s in steps.items()} == {"monitor": "ran", "other": "cached", "fetch": "ran"}
    assert steps["monitor"].reason == "run again: rerun by trigger schedule#1"
    assert steps["fetch"].reason == "always runs (cache: false)"
    assert steps["other"].reason.startswith("reused run ")
    assert mlops.get_run(steps["monitor"].run_id).tags["reason"] == "run again: rerun by trigger schedule#1"
    with pytest.raises(SpecError, match="trigger schedule#1, field 'rerun': no step 'trian'"):
        (project / "pipeline.yaml").write_text((project / "pipeline.yaml").read_text().replace("[monitor]", "[trian]"))
        load_pipeline()


def test_a_performance_trigger_on_a_missing_step_is_refused(project, home):
    write_pipeline(project, "- performance: {step: moniter, metric: accuracy, below: 0.5}\n")
    with pytest.raises(SpecError, match="field 'step': no step 'moniter' \\(did you mean 'monitor'\\?\\)"):
        load_pipeline()
    (project / "other.yaml").write_text("name: other\nsteps:\n  - name: score\n    notebook: notebooks/monitor.ipynb\n")
    write_pipeline(project, "- performance: {pipeline: other, step: monitor, metric: accuracy, below: 0.5}\n")
    result = check_pipeline()
    assert "pipeline 'other' (other.yaml) has no step 'monitor'; its steps: score" in result.errors["performance#1"]


def test_firings_during_someone_elses_run_stay_pending_and_run_next(project, home):
    write_pipeline(project, '- new_data: {paths: ["data/incoming/*.csv"], settle: 0}\n')
    check_pipeline()  # baseline
    (project / "data" / "incoming" / "a.csv").write_text("x\n1\n")
    with PipelineLock(home, "watched"):  # a manual run holds the pipeline
        busy = check_pipeline()
    assert busy.busy and not busy.runs and [f.trigger.key for f in busy.fired] == ["new_data#1"]
    assert "run at the next check after it ends" in str(CheckView(busy))
    assert trigger_store.pending_events(open_store(home), "watched")
    after = check_pipeline()
    assert len(after.runs) == 1 and after.runs[0].ok and not after.fired
    assert not trigger_store.pending_events(open_store(home), "watched")


def test_watch_with_no_argument_watches_every_pipeline_monitor_first(tmp_path, home):
    from mlops_nb.project.scaffold import init_project

    init_project(tmp_path / "churn")
    watcher = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "watch", "--interval", "0.3"],
                               cwd=tmp_path / "churn", env=dict(os.environ, MLOPS_NB_HOME=str(home)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = [watcher.stdout.readline() for _ in range(8)]  # one line per trigger, then what it watches
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)
    lines = "".join(first) + out
    assert lines.index("churn-monitor: new_data#1") < lines.index("churn: new_data#1"), (lines, err)
    assert "watching " in lines and "monitor.yaml" in lines and "pipeline.yaml" in lines


def test_drift_reads_the_window_and_only_changed_files_again(project, home, monkeypatch):
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(0, 1, 2000)}).to_csv(project / "data" / "ref.csv", index=False)
    write_pipeline(project, '- drift: {reference: data/ref.csv, current: "data/incoming/*.csv", settle: 0, '
                            'window: all}\n- drift: {reference: data/ref.csv, current: "data/incoming/*.csv", '
                            'settle: 0}\n')
    for i in range(5):
        pd.DataFrame({"a": rng.normal(0, 1, 500)}).to_csv(project / "data" / "incoming" / f"b{i}.csv", index=False)
        age(project / "data" / "incoming" / f"b{i}.csv", seconds=100 - i)
    check_pipeline(run=False)
    read = []
    original = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda path, *a, **k: read.append(Path(path).name) or original(path, *a, **k))
    pd.DataFrame({"a": rng.normal(0.3, 1, 500)}).to_csv(project / "data" / "incoming" / "b5.csv", index=False)
    result = check_pipeline(run=False)
    assert [f.trigger.key for f in result.fired] == ["drift#2"]  # the newest batch drifts; diluted in all six, not
    assert result.fired[0].evidence["current_files"] == ["data/incoming/b5.csv"]
    assert read == ["b5.csv"]  # the reference and the five older batches were not read again
