"""Sweeps over a search space: grid, random and Optuna points, Optuna's pruning, the space's checks."""

import json

import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.pipeline import search as spaces
from mlops_nb.pipeline.params import declared_params
from mlops_nb.project.scaffold import init_project
from mlops_nb.registry import runs
from tests.notebooks_util import write_notebook

# A trainer that reports its score as it goes: 6 steps, the score rising towards `quality`.
LEARNER = """
import time
import mlops_nb as mlops
for step in range(6):
    time.sleep(0.3)
    mlops.log_metric("score", quality * (step + 1) / 6, step=step)
"""


@pytest.fixture
def learner(tmp_path, home):
    (tmp_path / "notebooks").mkdir()
    return write_notebook(tmp_path / "notebooks" / "learn.ipynb", [LEARNER], parameters="quality = 0.5\ntag = 'a'")


def test_a_space_takes_ranges_and_choices_typed_as_the_notebook_declares(learner):
    space = spaces.parse_space({"quality": {"log_uniform": [0.01, 1], "points": 3}, "tag": ["a", "b"]},
                               declared_params(learner), "space.yaml")
    assert spaces.grid_points(space) == [{"quality": 0.01, "tag": "a"}, {"quality": 0.01, "tag": "b"},
                                         {"quality": 0.1, "tag": "a"}, {"quality": 0.1, "tag": "b"},
                                         {"quality": 1.0, "tag": "a"}, {"quality": 1.0, "tag": "b"}]
    points = spaces.random_points(space, 50, seed=3)
    assert points == spaces.random_points(space, 50, seed=3) != spaces.random_points(space, 50, seed=4)
    assert all(0.01 <= p["quality"] <= 1 and p["tag"] in ("a", "b") for p in points)
    counts = spaces.parse_space({"quality": {"int": [1, 4]}}, {"quality": declared_params(learner)["quality"]}, "s")
    assert {p["quality"] for p in spaces.random_points(counts, 200, seed=0)} == {1, 2, 3, 4}


@pytest.mark.parametrize("space, message", [
    ({"qualty": [1]}, "has no param 'qualty' (did you mean 'quality'?)"),
    ({"quality": {"uniform": [1, 0]}}, "low must be below high"),
    ({"quality": {"log_uniform": [0, 1]}}, "a log scale needs a low above 0"),
    ({"quality": {"normal": [0, 1]}}, "give one of choice, uniform, log_uniform or int"),
    ({"quality": {"uniform": [0]}}, "uniform takes [low, high] numbers"),
    ({"tag": {"uniform": [0, 1]}}, "the notebook's default 'a' is a str"),
    ({"quality": {"uniform": [0, 1], "points": 0}}, "points must be a whole number of at least 1"),
    ([1, 2], "a search space maps param names to values or ranges"),
])
def test_a_bad_space_is_refused_in_one_line_that_says_what_to_write(learner, space, message):
    with pytest.raises(mlops.MlopsError) as raised:
        spaces.parse_space(space, declared_params(learner), "space.yaml")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_sweep_command_says_what_it_needs(learner, tmp_path):
    (tmp_path / "space.yaml").write_text("quality: {uniform: [0, 1]}\n")
    cases = [(["--space", "space.yaml", "--search", "optuna", "-n", "3"], "an optuna sweep needs -m METRIC"),
             (["--space", "space.yaml", "--search", "random"], "a random sweep needs --trials N"),
             ([], "a sweep needs a search space: -p NAME=V1,V2,... (repeatable) or --space FILE.yaml"),
             (["--space", "nowhere.yaml"], "search space file"),
             (["--search", "bayes"], "'bayes' is not one of 'grid', 'random', 'optuna'")]
    for args, message in cases:
        result = CliRunner().invoke(cli, ["sweep", "notebooks/learn.ipynb", *args])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_random_sweep_runs_its_trials_as_sibling_runs(learner, tmp_path):
    (tmp_path / "space.yaml").write_text("quality: {uniform: [0, 1]}\ntag: [a, b]\n")
    result = CliRunner().invoke(cli, ["sweep", "notebooks/learn.ipynb", "--space", "space.yaml", "--search",
                                      "random", "-n", "3", "--seed", "7", "-m", "score", "-j", "2", "--json", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [p["params"] for p in data["points"]] == spaces.random_points(
        spaces.parse_space({"quality": {"uniform": [0, 1]}, "tag": ["a", "b"]}, declared_params(learner), "s"), 3, 7)
    for point in data["points"]:
        run = mlops.get_run(point["run_id"])
        assert run.parent_id == data["run_id"] and run.params["quality"] == point["params"]["quality"]
        assert run.metrics["score"] == pytest.approx(point["params"]["quality"])
    best = max(data["points"], key=lambda p: p["params"]["quality"])
    assert data["best_run"] == best["run_id"]
    assert mlops.get_run(data["run_id"]).tags["search"] == "random"


def test_optuna_prunes_a_trial_whose_steps_fall_behind_and_the_sweep_goes_on(learner):
    pytest.importorskip("optuna")
    # Random startup points (TPE's first 10 are random) drawn with this seed: a low one comes after
    # three have finished, so the median pruner stops it at its second step.
    sweep = mlops.sweep("notebooks/learn.ipynb", space={"quality": {"uniform": [0, 1]}}, search="optuna",
                        trials=6, metric="score", seed=1)
    assert sweep.ok and len(sweep.points) == 6, sweep
    statuses = [p["status"] for p in sweep.points]
    assert "pruned" in statuses and set(statuses) <= {"ran", "pruned"}, sweep.points
    store = mlops.tracking.get_store()
    finished = [p["params"]["quality"] for p in sweep.points if p["status"] == "ran"]
    for point in sweep.points:
        run = mlops.get_run(point["run_id"])
        steps = [step for _, step, _, _ in runs.metric_history(store, point["run_id"], "score")]
        if point["status"] == "pruned":
            assert run.status == "interrupted" and run.tags["mlops.pruned"].startswith("pruned by optuna at step")
            assert len(steps) < 6  # stopped before the end
            assert point["params"]["quality"] < sorted(finished)[len(finished) // 2]
        else:
            assert steps == list(range(6))
    assert sweep.best["params"]["quality"] == max(finished)


@pytest.mark.slow
def test_an_optuna_sweep_of_the_template_beats_the_grids_first_point(tmp_path, home, monkeypatch):
    pytest.importorskip("optuna")
    project = tmp_path / "churn"
    init_project(project)
    monkeypatch.chdir(project)
    assert mlops.run_pipeline().ok  # extract and prepare write data/train.csv and data/test.csv
    space = {"model": ["logreg", "forest"], "C": {"log_uniform": [0.0001, 100]}, "n_estimators": {"int": [10, 150]}}
    first = spaces.grid_points(spaces.parse_space(space, declared_params(project / "notebooks" / "train.ipynb"),
                                                  "space"))[0]
    grid = mlops.sweep("notebooks/train.ipynb", {name: [value] for name, value in first.items()}, metric="accuracy")
    optuna = mlops.sweep("notebooks/train.ipynb", space=space, search="optuna", trials=20, metric="accuracy",
                         seed=0, jobs=2)
    assert grid.ok and optuna.ok
    assert optuna.best["metrics"]["accuracy"] > grid.best["metrics"]["accuracy"], (grid.best, optuna.best)
    assert len(optuna.points) == 20 and {p["status"] for p in optuna.points} == {"ran"}
    recorded = {p["run_id"] for p in optuna.points}
    assert len(recorded) == 20 and all(mlops.get_run(r).parent_id == optuna.result.run_id for r in recorded)
    for point in optuna.points:  # each trial's run holds the params Optuna proposed and the accuracy it got
        run = mlops.get_run(point["run_id"])
        assert {name: run.params[name] for name in space} == point["params"]
        assert run.metrics["accuracy"] == point["metrics"]["accuracy"]
