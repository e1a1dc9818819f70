"""Any filter a person (or a script) can type gives runs or a one-line error, never another exception."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlops_nb as mlops
from mlops_nb.errors import MlopsError
from mlops_nb.registry import search
from mlops_nb.registry.store import open_store

TOKENS = ["metrics.acc", "params.C", "tags.team", "status", "start_time", "experiment", "metrics.`a b`", "run.id",
          "and", "or", "not", "(", ")", ",", "=", "==", "!=", "<>", "<", "<=", ">", ">=", "like", "ilike", "in",
          "is", "null", "'rf'", '"ml%"', "'2026-11-01'", "0.9", "1", "-3e5", "nan", "inf", "9" * 40, "'", "`",
          "params.", "metrics", "\\", "%", "😀"]

filters = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80),
    st.integers(min_value=1, max_value=40).map(lambda n: "(" * n + "metrics.acc > 0" + ")" * n),
    st.integers(min_value=1, max_value=1500).map(lambda n: " and ".join(["params.C = 1"] * n)),
    st.integers(min_value=1, max_value=20).map(lambda n: nested_alternations(n)),
    st.integers(min_value=1, max_value=6000).map(lambda n: "metrics.acc > " + "9" * n),
)


def nested_alternations(depth: int) -> str:
    text = "metrics.acc > 0"
    for i in range(depth):
        text = f"(metrics.acc > {i} or (params.C < {i} and {text}))"
    return text


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz") / ".mlops"
    mlops.set_home(home)
    try:
        for i, model in enumerate(["rf", "lr", "rf"]):
            with mlops.start_run(experiment="exp", params={"C": i, "model": model}, tags={"team": "ml"}):
                mlops.log_metric("acc", 0.5 + i / 10)
    finally:
        mlops.set_home(None)
    return open_store(home)


def outcome(action) -> str:
    try:
        action()
        return "ok"
    except MlopsError as exc:
        message = exc.args[0] if exc.args else str(exc)
        assert message and "\n" not in message, message
        return "error"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=filters, order=st.sampled_from([None, "metrics.acc desc", "params.C", "name asc", "nope", "metrics."]),
       limit=st.one_of(st.none(), st.integers(min_value=-5, max_value=10**25)))
def test_any_filter_gives_runs_or_a_one_line_error(store, text, order, limit):
    outcome(lambda: search.search_run_rows(store, text, order_by=order, max_results=limit))
