"""Edge cases found in review: each was a traceback, a wrong row or lost data once."""

import shutil
import threading

import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.errors import FilterSyntaxError, InvalidInputError


def test_each_thread_logs_into_its_own_run(store):
    ready, done = threading.Event(), threading.Event()
    ids = {}

    def other():
        with mlops.start_run(name="b") as run:
            ids["b"] = run.id
            ready.set()
            done.wait(5)
            mlops.log_metric("who", 2.0)

    thread = threading.Thread(target=other)
    with mlops.start_run(name="a") as run:
        thread.start()
        ready.wait(5)
        mlops.log_metric("who", 1.0)
        done.set()
        thread.join()
    assert mlops.get_run(run.id).metrics == {"who": 1.0}
    assert mlops.get_run(ids["b"]).metrics == {"who": 2.0}
    assert mlops.get_run(ids["b"]).parent_id is None


@pytest.fixture
def three(home):
    for name, params, metric in (("r1", {"C": 1.0, "s": "10"}, float("nan")), ("r2", {"C": 10}, 1.0),
                                 ("r3", {"C": "abc"}, 2.0)):
        with mlops.start_run(name=name, params=params):
            mlops.log_metric("m", metric)


@pytest.mark.parametrize("flt, expected", [
    (" or ".join(f"name = 'r{i}'" for i in range(300)), ["r1", "r2", "r3"]),
    ("params.C in (1, 10, 'abc')", ["r1", "r2", "r3"]),
    ("params.C in (1, 10)", ["r1", "r2"]),
    ("params.s = 10", ["r1"]),
    ("metrics.m = nan", ["r1"]),
    ("metrics.m != nan", ["r2", "r3"]),
    ("metrics.m > -inf", ["r2", "r3"]),
    ("not not name = 'r1'", ["r1"]),
    ("params.C > 99999999999999999999", []),
])
def test_filter_edge_cases(three, flt, expected):
    assert sorted(mlops.search_runs(flt)["name"]) == expected


@pytest.mark.parametrize("flt, message", [
    ("name = 'abc", "has no closing '"),
    ("(" * 3000 + "name = 'x'" + ")" * 3000, "too deeply"),
    (" or ".join(f"name = 'r{i}'" for i in range(450)), "at most 400"),
])
def test_filter_limits_are_clear_errors(three, flt, message):
    with pytest.raises(FilterSyntaxError, match=message):
        mlops.search_runs(flt)


def test_order_by_accepts_commas_and_refuses_typos(three):
    assert list(mlops.search_runs(order_by="metrics.m desc, name")["name"])[:2] == ["r3", "r2"]
    with pytest.raises(FilterSyntaxError, match="cannot order by 'metrics.m sideways'"):
        mlops.search_runs(order_by="metrics.m sideways")


def test_out_of_range_step_is_refused_and_the_rest_is_kept(store):
    with mlops.start_run() as run:
        mlops.log_metric("ok", 1.0)
        with pytest.raises(InvalidInputError, match="fits in 64 bits"):
            mlops.log_metric("s", 1.0, step=2 ** 63)
    got = mlops.get_run(run.id)
    assert got.status == "finished" and got.metrics == {"ok": 1.0}


def test_huge_numbers_are_errors_or_stored(store):
    with mlops.start_run(params={"big": 10 ** 400}) as run:
        with pytest.raises(InvalidInputError, match="too large"):
            mlops.log_metric("x", 10 ** 400)
    assert mlops.get_run(run.id).params["big"] == 10 ** 400


def test_logging_into_an_ended_run_is_refused(store):
    with mlops.start_run() as run:
        pass
    for call in (lambda: run.log_metric("late", 1.0), lambda: run.log_param("p", 1), lambda: run.set_tag("t", 1),
                 lambda: run.log_artifact(b"x", "x.bin")):
        with pytest.raises(InvalidInputError, match="has ended"):
            call()


def test_bad_start_run_input_leaves_no_experiment_behind(store):
    for kwargs in ({"name": 5}, {"kind": "weird"}, {"params": [("a", 1)]}, {"tags": "abc"}, {"experiment": ""}):
        with pytest.raises(InvalidInputError):
            mlops.start_run(**({"experiment": "x"} | kwargs))
    assert store.query("SELECT name FROM experiments") == []


def test_nested_run_inherits_experiment_and_ends_with_its_parent(store):
    parent = mlops.start_run(experiment="outer")
    child = mlops.start_run(name="inner")
    parent.end()
    assert mlops.get_run(child.id).experiment == "outer"
    assert mlops.get_run(child.id).status == "finished"
    with mlops.start_run() as fresh:
        pass
    assert mlops.get_run(fresh.id).parent_id is None


def test_sys_exit_zero_inside_a_run_is_finished(store):
    with pytest.raises(SystemExit):
        with mlops.start_run() as run:
            raise SystemExit(0)
    assert mlops.get_run(run.id).status == "finished"


def test_deleted_registry_is_recreated_not_written_into_a_ghost(home):
    with mlops.start_run():
        pass
    shutil.rmtree(home)
    with mlops.start_run(name="after") as run:
        pass
    assert (home / "registry.db").exists()
    assert mlops.get_run(run.id).name == "after"


def test_user_text_is_never_read_as_terminal_markup(home):
    from sklearn.dummy import DummyClassifier

    import pandas as pd

    with mlops.start_run(name="[bold]run") as run:
        mlops.log_dataset(pd.DataFrame({"a": [1]}), "[/bold] data")
        mlops.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "model")
    mlops.register_model(run, "m")
    mlops.set_alias("m", 1, "production", reason="[/bold]")
    for args in (["runs", "show", run.id], ["models", "show", "m"], ["models", "ls"], ["runs", "ls"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    assert "[/bold] data" in CliRunner().invoke(cli, ["runs", "show", run.id]).output


def test_big_version_numbers_are_one_line_errors(home):
    result = CliRunner().invoke(cli, ["models", "promote", "m", "99999999999999999999"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    with pytest.raises(InvalidInputError):
        mlops.set_alias("m", "²")


def test_recursive_and_huge_params_are_one_line_errors(store):
    looped = []
    looped.append(looped)
    for value, message in ((looped, "it contains itself"), (10 ** 5000, "an integer of more than 4,000 digits")):
        with pytest.raises(InvalidInputError, match=message):
            mlops.start_run(params={"p": value})
    assert mlops.search_runs().empty  # nothing half-made


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n\x00\xff", b"[1, 2]", b'{"cells": 3}', b'{"cells": [1]}'])
def test_a_step_notebook_that_is_not_a_notebook_is_one_line(tmp_path, home, monkeypatch, content):
    (tmp_path / "step.ipynb").write_bytes(content)
    (tmp_path / "pipeline.yaml").write_text("name: n\nsteps:\n  - name: s\n    notebook: step.ipynb\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1 and "step.ipynb is" in result.output and "not" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1


def test_init_where_nothing_can_be_written_is_one_line():
    result = CliRunner().invoke(cli, ["init", "/proc/mlops-nb-project"])
    assert result.exit_code == 1 and "cannot make the project in /proc/mlops-nb-project" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_set_home_on_a_project_folder_means_its_mlops(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    (tmp_path / "pipeline.yaml").write_text("name: p\nsteps: []\n")
    monkeypatch.chdir(tmp_path)
    mlops.set_home(".")
    try:
        with mlops.start_run():
            mlops.log_metric("m", 1.0)
        assert (tmp_path / ".mlops" / "registry.db").is_file() and not (tmp_path / "registry.db").exists()
    finally:
        mlops.set_home(None)


def test_a_run_name_used_twice_means_the_newest(store):
    for value in (1.0, 2.0):  # a notebook executed twice names its runs again
        with mlops.start_run(name="fit-rf"):
            mlops.log_metric("m", value)
    with mlops.start_run(name="fit-rf2"):
        mlops.log_metric("m", 3.0)
    assert mlops.get_run("fit-rf").metrics == {"m": 2.0}
    result = CliRunner().invoke(cli, ["runs", "compare", "fit-rf", "fit-rf2"])
    assert result.exit_code == 0, result.output
