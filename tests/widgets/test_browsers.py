"""The widgets driven as a user would (values set, buttons clicked), asserting on the registry."""

import pytest
from sklearn.dummy import DummyClassifier

import mlops_nb as mlops
from mlops_nb.errors import NotFoundError
from mlops_nb.widgets import ModelsBrowser, RunsBrowser


@pytest.fixture
def runs(home):
    made = []
    for name, model, accs in (("rf-a", "rf", [0.5, 0.7, 0.9]), ("rf-b", "rf", [0.6, 0.65]), ("lr-a", "lr", [0.8])):
        with mlops.start_run(experiment="exp", name=name, params={"model": model}) as run:
            for acc in accs:
                mlops.log_metric("acc", acc)
            mlops.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "model")
        made.append(run.id)
    return made


def test_filter_box_uses_the_search_grammar(runs):
    browser = RunsBrowser()
    assert len(browser.rows) == 3
    browser.filter_box.value = "params.model = 'rf' and metrics.acc > 0.8"
    assert [r["name"] for r in browser.rows] == ["rf-a"]
    assert ">rf-a<" in browser.table.value and ">lr-a<" not in browser.table.value


def test_bad_filter_shows_one_line_error_and_keeps_the_table(runs):
    browser = RunsBrowser()
    browser.filter_box.value = "metrics.acc >"
    assert "expected a number or a quoted string" in browser.message.value
    assert len(browser.rows) == 3


def test_sorting_by_a_metric_column(runs):
    browser = RunsBrowser()
    assert "metrics.acc" in browser.sort.options
    browser.sort.value = "metrics.acc"
    browser.direction.value = "asc"
    assert [r["name"] for r in browser.rows] == ["rf-b", "lr-a", "rf-a"]


def test_compare_shows_params_diff_and_metric_chart(runs):
    browser = RunsBrowser()
    browser.selection.value = (runs[0], runs[1], runs[2])
    browser.compare_button.click()
    assert "params.model" in browser.comparison.value and "#fff3c4" in browser.comparison.value  # differs
    assert "<svg" in browser.comparison.value and "<polyline" in browser.comparison.value
    browser.selection.value = (runs[0],)
    browser.compare_button.click()
    assert "select two or more runs" in browser.comparison.value


def test_show_gives_one_run_with_its_figures_and_tables(runs):
    import pandas as pd

    with mlops.start_run(experiment="exp", name="with-media"):
        mlops.log_table(pd.DataFrame({"customer": ["c-17"], "error": [0.9]}), "worst")
        mlops.log_text("trained on March", "notes")
    browser = RunsBrowser()
    browser.show_button.click()
    assert "select one run to show" in browser.comparison.value
    browser.selection.value = (mlops.get_run("with-media").id,)
    browser.show_button.click()
    shown = browser.comparison.value
    assert "with-media" in shown and "worst.parquet" in shown and "<td>c-17</td>" in shown
    assert "trained on March" in shown


def test_widget_display_data_carries_static_html(runs):
    bundle = RunsBrowser()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert ">rf-a<" in bundle["text/html"]


def test_promote_needs_confirmation_then_moves_the_alias(runs):
    for run_id in runs[:2]:
        mlops.register_model(run_id, "clf")
    browser = ModelsBrowser("clf")
    browser.version.value = 1
    browser.promote_button.click()
    assert browser.confirm_box.layout.display == "flex" and "version 1" in browser.question.value
    with pytest.raises(NotFoundError, match="has no alias 'production'"):
        mlops.get_model_version("clf@production")  # nothing changed before confirming
    browser.confirm_button.click()
    assert mlops.get_model_version("clf@production").version == 1
    browser.version.value = 2
    browser.promote_button.click()
    browser.confirm_button.click()
    assert mlops.get_model_version("clf@production").version == 2
    browser.rollback_button.click()
    browser.confirm_button.click()
    assert mlops.get_model_version("clf@production").version == 1
    assert "clf@production -&gt; version 1" in browser.message.value


def test_cancel_leaves_the_alias_alone(runs):
    mlops.register_model(runs[0], "clf")
    browser = ModelsBrowser("clf")
    browser.promote_button.click()
    browser.cancel_button.click()
    assert browser.confirm_box.layout.display == "none"
    with pytest.raises(NotFoundError, match="has no alias 'production'"):
        mlops.get_model_version("clf@production")


def test_params_without_a_value_anywhere_make_no_column(home):
    from mlops_nb.show.html import runs_html

    for C in (0.1, 1.0):
        with mlops.start_run(params={"C": C, "class_weight": None}):
            mlops.log_metric("accuracy", C)
    rows = [{"run_id": r, "name": n, "experiment": "e", "status": "finished", "start_time": 0, "end_time": 1,
             "params": mlops.get_run(r).params, "metrics": mlops.get_run(r).metrics}
            for r, n in zip(mlops.search_runs()["run_id"], ("a", "b"))]
    html = runs_html(rows)
    assert "<i>C</i>" in html and "class_weight" not in html
    from mlops_nb.show.terminal import common_keys

    rows = [{"same": 1, "often": 1, "varies": 1}, {"same": 1, "often": 2, "varies": 2}, {"same": 1, "varies": 3}]
    assert common_keys(rows, limit=2) == ["varies", "often"]  # what differs between runs comes first
