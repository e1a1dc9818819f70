"""Pipelines and sweeps on a real Dask cluster: worker processes on 127.0.0.1 running steps on their own kernels."""

import json

import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb import run_pipeline
from mlops_nb.cli import cli
from mlops_nb.registry.store import open_store

pytest.importorskip("distributed", reason="the Dask executor needs distributed: pip install -e '.[dask]'")
pytestmark = pytest.mark.slow


def recorded(home, result):
    """What each step run left in the registry, without what differs between any two runs (ids, times)."""
    store = open_store(home)
    out = {}
    for name, step in result.steps.items():
        run = mlops.get_run(step.run_id)
        outputs = dict(store.query("SELECT name, value FROM outputs WHERE run_id = ?", (step.run_id,)))
        key = store.query("SELECT cache_key FROM runs WHERE id = ?", (step.run_id,))[0][0]
        out[name] = {"params": run.params, "metrics": run.metrics, "outputs": outputs, "cache_key": key,
                     "notebook": sorted(a for a in json.dumps(run.artifacts).split('"') if a.endswith(".ipynb"))}
    return out


def test_the_same_pipeline_locally_and_on_dask_records_the_same(project, home, capsys):
    from mlops_nb.show.progress import LineProgress

    local = run_pipeline(params=["C=0.5"], jobs=2)
    assert local.ok
    on_dask = run_pipeline(params=["C=0.5"], jobs=2, executor="dask", force=True, progress=LineProgress())
    assert on_dask.ok, [s.failure.describe() for s in on_dask.steps.values() if s.failure]
    assert {s.status for s in on_dask.steps.values()} == {"ran"}
    assert recorded(home, on_dask) == recorded(home, local)
    assert mlops.get_run(on_dask.steps["train"].run_id).metrics == {"accuracy": 0.6}
    printed = capsys.readouterr().out
    assert "on Dask LocalCluster, 2 workers x 1 thread" in printed
    assert "dashboard http://127.0.0.1:" in printed
    assert "→ train on worker tcp://127.0.0.1:" in printed
    # Unchanged, it is cached on Dask as locally: nothing is sent to the cluster.
    again = run_pipeline(params=["C=0.5"], executor="dask")
    assert {s.status for s in again.steps.values()} == {"cached"}


def test_a_bad_executor_is_one_line_and_records_nothing(project, home):
    result = CliRunner().invoke(cli, ["run", "--executor", "dusk"])
    assert result.exit_code == 1, result.output
    assert "--executor (or MLOPS_NB_EXECUTOR): expected local, dask or a Dask scheduler's address tcp://HOST:PORT, got 'dusk'" in result.output
    result = CliRunner().invoke(cli, ["run", "--executor", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1 and "no Dask scheduler answers at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
    assert open_store(home).query("SELECT COUNT(*) FROM runs") == [(0,)]
