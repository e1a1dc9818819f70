import pytest

import mlops_nb as mlops
from mlops_nb.errors import FilterSyntaxError, InvalidInputError, NotFoundError
from mlops_nb.registry.query import parse_filter

pytestmark = pytest.mark.backends  # on the SQLite file and on PostgreSQL


@pytest.fixture
def runs(home):
    made = {}
    specs = [
        ("rf-1", "exp-a", {"model": "rf", "C": 1.0}, {"accuracy": 0.95, "f1": 0.9}, {"team": "ml"}),
        ("rf-2", "exp-a", {"model": "rf", "C": 0.1}, {"accuracy": 0.85}, {"team": "data"}),
        ("svm-1", "exp-a", {"model": "svm", "C": 10}, {"accuracy": 0.92}, {}),
        ("lr-1", "exp-b", {"model": "lr", "C": "auto"}, {"accuracy": 0.70, "f1": float("nan")}, {"team": "ML"}),
    ]
    for name, experiment, params, metrics, tags in specs:
        with mlops.start_run(experiment=experiment, name=name, params=params, tags=tags) as run:
            mlops.log_metrics(metrics)
        made[name] = run.id
    return made


def names(frame):
    return sorted(frame["name"])


@pytest.mark.parametrize("flt, expected", [
    ("metrics.accuracy > 0.9 and params.model = 'rf'", ["rf-1"]),
    ("metrics.accuracy > 0.9 or params.model = 'lr'", ["lr-1", "rf-1", "svm-1"]),
    ("params.C >= 1", ["rf-1", "svm-1"]),
    ("params.C = 'auto'", ["lr-1"]),
    ("params.model in ('rf', 'svm') and not metrics.accuracy < 0.9", ["rf-1", "svm-1"]),
    ("params.model not in ('rf', 'svm')", ["lr-1"]),
    ("tags.team like 'm%'", ["rf-1"]),
    ("tags.team ilike 'm%'", ["lr-1", "rf-1"]),
    ("tags.team is null", ["svm-1"]),
    ("metrics.f1 is not null", ["lr-1", "rf-1"]),
    ("metrics.f1 > 0", ["rf-1"]),
    ("experiment = 'exp-b'", ["lr-1"]),
    ("(params.model = 'rf' or params.model = 'svm') and metrics.accuracy >= 0.92", ["rf-1", "svm-1"]),
    ("name like 'rf-%' and status = 'finished'", ["rf-1", "rf-2"]),
    ("start_time > '2000-01-01'", ["lr-1", "rf-1", "rf-2", "svm-1"]),
    ("metrics.`accuracy` > 0.9", ["rf-1", "svm-1"]),
    ("METRICS.accuracy > 0.9 AND Params.model = \"rf\"", ["rf-1"]),
])
def test_filter_selects_matching_runs(runs, flt, expected):
    assert names(mlops.search_runs(flt)) == expected


def test_frame_has_one_row_per_run_with_prefixed_columns(runs):
    frame = mlops.search_runs(experiment="exp-a", order_by=["metrics.accuracy DESC"])
    assert list(frame["name"]) == ["rf-1", "svm-1", "rf-2"]
    assert {"params.model", "params.C", "metrics.accuracy", "metrics.f1", "tags.team"} <= set(frame.columns)
    assert frame.loc[0, "metrics.accuracy"] == 0.95
    assert str(frame["start_time"].dtype).startswith("datetime64")


def test_order_by_puts_missing_values_last_and_max_results_limits(runs):
    frame = mlops.search_runs(order_by="metrics.f1 desc", max_results=3)
    assert list(frame["name"])[:1] == ["rf-1"] and len(frame) == 3
    assert list(mlops.search_runs(order_by=["params.C asc"])["name"])[:3] == ["rf-2", "rf-1", "svm-1"]


@pytest.mark.parametrize("flt, message, column", [
    ("metrics.accuracy >", "expected a number or a quoted string at column 19, found the end", 18),
    ("metrics.accuracy > 0.9 and", "expected a field", 26),
    ("params.model = rf", "quote text values, e.g. params.model = 'rf'", 15),
    ("metrics.accuracy ~ 1", "unexpected character '~'", 17),
    ("colour = 'red'", "unknown field 'colour'", 0),
    ("metrics.accuracy = 'high'", "compares with numbers", None),
    ("(metrics.a > 1", r"expected '\)'", 14),
    ("metrics.a > 1 metrics.b > 2", "expected 'and', 'or' or the end", 14),
    ("start_time > 'yesterday'", "is not a time", None),
])
def test_bad_filter_points_at_the_bad_token(runs, flt, message, column):
    with pytest.raises(FilterSyntaxError, match=message) as info:
        mlops.search_runs(flt)
    if column is not None:
        assert info.value.position == column
        assert str(info.value).splitlines()[-1] == "  " + " " * column + "^"


def test_filter_values_are_parameters_not_sql(runs):
    frame = mlops.search_runs("params.model = 'rf'' OR 1=1 --'")
    assert frame.empty
    assert len(mlops.search_runs()) == 4  # nothing was dropped or altered


def test_unknown_experiment_lists_known_ones(runs):
    with pytest.raises(NotFoundError, match="no experiment named 'nope'; known experiments: 'exp-a', 'exp-b'"):
        mlops.search_runs(experiment="nope")


def test_bad_order_by_and_max_results_are_refused(runs):
    with pytest.raises(FilterSyntaxError, match="cannot order by 'colour'"):
        mlops.search_runs(order_by=["colour"])
    with pytest.raises(InvalidInputError, match="max_results must be a whole number from 1 to 10,000,000, got 0"):
        mlops.search_runs(max_results=0)


def test_empty_filter_means_everything():
    assert parse_filter("   ") is None


def test_every_value_lands_exactly_in_its_own_runs_row(home):
    """Many runs (their ids sorted apart from their order), values that a decimal rendering would round, and
    params that differ, repeat or are lists: each frame cell and each row dict holds its run's own value."""
    awkward = [0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, float("inf"), float("-inf"), 2 / 3]
    expected = {}
    for i in range(120):
        metrics = {"acc": awkward[i % len(awkward)] + i, "loss": float("nan") if i % 5 == 0 else i / 7}
        if i % 3 == 0:
            metrics["rare"] = -i / 3
        params = {"seed": i, "model": ["rf", "svm"][i % 2], "layers": [i, i + 1]}
        with mlops.start_run(experiment="many", params=params, tags={"i": str(i)} if i % 4 else {}) as run:
            mlops.log_metrics(metrics)
        expected[run.id] = (metrics, params)
    frame = mlops.search_runs(experiment="many")
    assert len(frame) == 120 and list(frame["start_time"]) == sorted(frame["start_time"], reverse=True)
    for row in frame.to_dict("records"):
        metrics, params = expected[row["run_id"]]
        for key in ("acc", "loss", "rare"):
            want, got = metrics.get(key, float("nan")), row[f"metrics.{key}"]
            assert got == want or (want != want and got != got), (key, want, got)
        assert (row["params.seed"], row["params.model"], row["params.layers"]) == \
            (params["seed"], params["model"], params["layers"])
        tag = row["tags.i"]
        assert tag != tag if params["seed"] % 4 == 0 else tag == str(params["seed"])  # missing: NaN
    frame.loc[0, "params.layers"].append(99)  # each run has its own list
    assert frame.loc[1, "params.layers"][-1] != 99
    from mlops_nb.registry.search import search_run_rows

    for run in search_run_rows(mlops.get_store(), experiment="many"):
        metrics, params = expected[run["run_id"]]
        assert run["params"] == params and set(run["metrics"]) == set(metrics)
        assert all(type(v) is float for v in run["metrics"].values())
        assert all(v == metrics[k] or v != v for k, v in run["metrics"].items())


def test_a_search_leaves_the_garbage_collector_as_it_found_it(runs):
    import gc

    mlops.search_runs()
    assert gc.isenabled()
    gc.disable()
    try:
        mlops.search_runs()
        assert not gc.isenabled()
    finally:
        gc.enable()
