"""XGBoost and LightGBM in ``%%track`` cells run by a real IPython shell: eval curves, params and boosters."""

import subprocess
import sys

import pytest

import mlops_nb as mlops

DATA = ("from sklearn.datasets import make_classification\n"
        "X, y = make_classification(n_samples=300, n_features=6, random_state=0)\n"
        "X_fit, y_fit, X_val, y_val = X[:200], y[:200], X[200:], y[200:]\n")


@pytest.fixture
def ip(home):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "mlops_nb")
    assert shell.run_cell(DATA).success
    yield shell
    for name in ("model", "booster", "boosters", "X", "y", "X_fit", "y_fit", "X_val", "y_val", "dtrain", "dval",
                 "train_set", "val_set", "history", "callbacks", "x", "_original"):
        shell.user_ns.pop(name, None)


def curve(run_name, key):
    history = mlops.metric_history(run_name, key).sort_values("step")
    assert list(history["step"]) == list(range(len(history)))
    return list(history["value"])


def test_xgboost_model_fitted_with_an_eval_set_logs_each_iterations_metrics(ip):
    xgboost = pytest.importorskip("xgboost")
    cell = ("%%track xgb-sk\n"
            "import xgboost\n"
            "model = xgboost.XGBClassifier(n_estimators=20, max_depth=2, eval_metric=['logloss', 'error'])\n"
            "model.fit(X_fit, y_fit, eval_set=[(X_fit, y_fit), (X_val, y_val)], verbose=False)")
    assert ip.run_cell(cell).success
    reported = ip.user_ns["model"].evals_result()
    assert set(reported) == {"validation_0", "validation_1"}
    for set_name, metrics in reported.items():
        for metric, values in metrics.items():
            assert curve("xgb-sk", f"model.{set_name}.{metric}") == values
    run = mlops.get_run("xgb-sk")
    assert run.params["model.max_depth"] == 2 and run.params["model.n_estimators"] == 20
    assert "model.best_iteration" not in run.metrics  # no early stopping, no best iteration
    assert "models/model.pkl" in run.artifacts
    mlops.register_model(run.id, "xgb-sk")
    assert isinstance(mlops.load_model("xgb-sk"), xgboost.XGBClassifier)


def test_xgboost_early_stopping_logs_the_best_iteration_and_score(ip):
    pytest.importorskip("xgboost")
    cell = ("%%track xgb-es\n"
            "import xgboost\n"
            "model = xgboost.XGBRegressor(n_estimators=200, learning_rate=0.5, early_stopping_rounds=3)\n"
            "model.fit(X_fit, y_fit, eval_set=[(X_val, y_val)], verbose=False)")
    assert ip.run_cell(cell).success
    model = ip.user_ns["model"]
    run = mlops.get_run("xgb-es")
    assert run.metrics["model.best_iteration"] == model.best_iteration
    assert run.metrics["model.best_score"] == pytest.approx(model.best_score)
    assert curve("xgb-es", "model.validation_0.rmse") == model.evals_result()["validation_0"]["rmse"]


def test_an_xgboost_model_without_eval_set_is_logged_and_a_refit_logged_again(ip):
    pytest.importorskip("xgboost")
    # XGBRegressor keeps its fitted state only in the private _Booster.
    assert ip.run_cell("%%track xgb-plain\nimport xgboost\n"
                       "model = xgboost.XGBRegressor(n_estimators=5).fit(X_fit, y_fit)").success
    run = mlops.get_run("xgb-plain")
    assert "models/model.pkl" in run.artifacts and run.metrics == {}
    assert ip.run_cell("%%track xgb-untouched\nx = 1").success
    assert mlops.get_run("xgb-untouched").artifacts == {}
    assert ip.run_cell("%%track xgb-refit\nmodel.fit(X_val, y_val)").success
    assert "models/model.pkl" in mlops.get_run("xgb-refit").artifacts


@pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
def test_lightgbm_model_fitted_with_an_eval_set_logs_curves_and_early_stopping(ip):
    pytest.importorskip("lightgbm")
    cell = ("%%track lgb-sk\n"
            "import lightgbm\n"
            "model = lightgbm.LGBMClassifier(n_estimators=100, learning_rate=0.3, num_leaves=7, verbose=-1)\n"
            "model.fit(X_fit, y_fit, eval_set=[(X_val, y_val)], eval_names=['val'], eval_metric='auc',\n"
            "          callbacks=[lightgbm.early_stopping(3, verbose=False)])")
    assert ip.run_cell(cell).success
    model = ip.user_ns["model"]
    run = mlops.get_run("lgb-sk")
    assert set(model.evals_result_["val"]) == {"binary_logloss", "auc"}
    for metric, values in model.evals_result_["val"].items():
        assert curve("lgb-sk", f"model.val.{metric}") == list(values)
    assert 0 < model.best_iteration_ < 100 and run.metrics["model.best_iteration"] == model.best_iteration_
    assert run.metrics["model.best_score.val.auc"] == pytest.approx(model.best_score_["val"]["auc"])
    assert run.params["model.num_leaves"] == 7
    assert not any(key.startswith("lightgbm.") for key in run.params)  # its fit calls train: not logged twice
    assert "models/model.pkl" in run.artifacts


def test_lightgbm_refit_is_logged_again(ip):
    pytest.importorskip("lightgbm")
    # An LGBM model's only public fitted attribute is fitted_ = True, which a refit leaves as it was.
    assert ip.run_cell("import lightgbm\nmodel = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1)"
                       ".fit(X_fit, y_fit)").success
    assert ip.run_cell("%%track lgb-refit\nmodel.fit(X_val, y_val)").success
    assert "models/model.pkl" in mlops.get_run("lgb-refit").artifacts


def test_xgboost_train_logs_params_eval_curves_and_the_booster(ip):
    xgboost = pytest.importorskip("xgboost")
    original = xgboost.train
    cell = ("%%track xgb-native\n"
            "import xgboost\n"
            "dtrain, dval = xgboost.DMatrix(X_fit, y_fit), xgboost.DMatrix(X_val, y_val)\n"
            "history = {}\n"
            "booster = xgboost.train({'objective': 'binary:logistic', 'max_depth': 3, 'eval_metric': 'logloss'},\n"
            "                        dtrain, 20, evals=[(dtrain, 'train'), (dval, 'val')], evals_result=history,\n"
            "                        verbose_eval=False)")
    assert ip.run_cell(cell).success
    assert xgboost.train is original
    history = ip.user_ns["history"]  # the user's own evals_result is still filled
    assert len(history["val"]["logloss"]) == 20
    for set_name in ("train", "val"):
        assert curve("xgb-native", f"booster.{set_name}.logloss") == history[set_name]["logloss"]
    run = mlops.get_run("xgb-native")
    assert run.params["booster.max_depth"] == 3 and run.params["booster.objective"] == "binary:logistic"
    assert run.params["booster.num_boost_round"] == 20
    mlops.register_model(run.id, "xgb-native")
    loaded = mlops.load_model("xgb-native")
    assert isinstance(loaded, xgboost.Booster)
    dval = ip.user_ns["dval"]
    assert list(loaded.predict(dval)) == list(ip.user_ns["booster"].predict(dval))


def test_xgboost_train_with_early_stopping_and_no_variable_is_named_after_the_library(ip):
    xgboost = pytest.importorskip("xgboost")
    cell = ("%%track xgb-unnamed\n"
            "import xgboost\n"
            "dval = xgboost.DMatrix(X_val, y_val)\n"
            "boosters = [xgboost.train({'eta': 0.5}, xgboost.DMatrix(X_fit, y_fit), 50, evals=[(dval, 'val')],\n"
            "                          early_stopping_rounds=3, verbose_eval=False) for _ in range(2)]")
    assert ip.run_cell(cell).success
    first, second = ip.user_ns.pop("boosters")
    run = mlops.get_run("xgb-unnamed")
    assert run.metrics["xgboost.best_iteration"] == first.best_iteration
    assert run.metrics["xgboost-2.best_score"] == pytest.approx(second.best_score)
    assert run.params["xgboost.early_stopping_rounds"] == 3 and run.params["xgboost-2.eta"] == 0.5
    assert {"models/xgboost.pkl", "models/xgboost-2.pkl"} <= set(run.artifacts)
    assert len(curve("xgb-unnamed", "xgboost.val.rmse")) == first.num_boosted_rounds()
    assert isinstance(first, xgboost.Booster)


def test_lightgbm_train_logs_params_eval_curves_and_the_booster(ip):
    lightgbm = pytest.importorskip("lightgbm")
    original = lightgbm.train
    cell = ("%%track lgb-native\n"
            "import lightgbm\n"
            "train_set = lightgbm.Dataset(X_fit, y_fit)\n"
            "val_set = lightgbm.Dataset(X_val, y_val, reference=train_set)\n"
            "history = {}\n"
            "callbacks = [lightgbm.record_evaluation(history)]\n"
            "booster = lightgbm.train({'objective': 'binary', 'num_leaves': 5, 'verbose': -1}, train_set, 20,\n"
            "                         valid_sets=[train_set, val_set], valid_names=['train', 'val'],\n"
            "                         callbacks=callbacks)")
    assert ip.run_cell(cell).success
    assert lightgbm.train is original
    assert len(ip.user_ns.pop("callbacks")) == 1  # the caller's list is left alone
    history = ip.user_ns["history"]
    for set_name in ("train", "val"):
        assert curve("lgb-native", f"booster.{set_name}.binary_logloss") == list(
            history[set_name]["binary_logloss"])
    run = mlops.get_run("lgb-native")
    assert run.params["booster.num_leaves"] == 5 and run.params["booster.num_boost_round"] == 20
    assert "booster.best_iteration" not in run.metrics
    mlops.register_model(run.id, "lgb-native")
    loaded = mlops.load_model("lgb-native")
    assert isinstance(loaded, lightgbm.Booster)
    assert list(loaded.predict(ip.user_ns["X_val"])) == list(ip.user_ns["booster"].predict(ip.user_ns["X_val"]))


def test_lightgbm_train_with_early_stopping_logs_the_best_iteration(ip):
    lightgbm = pytest.importorskip("lightgbm")
    cell = ("%%track lgb-es\n"
            "import lightgbm\n"
            "train_set = lightgbm.Dataset(X_fit, y_fit)\n"
            "booster = lightgbm.train({'objective': 'binary', 'learning_rate': 0.5, 'verbose': -1}, train_set, 100,\n"
            "                         valid_sets=[lightgbm.Dataset(X_val, y_val, reference=train_set)],\n"
            "                         callbacks=[lightgbm.early_stopping(3, verbose=False)])")
    assert ip.run_cell(cell).success
    booster = ip.user_ns["booster"]
    run = mlops.get_run("lgb-es")
    assert 0 < booster.best_iteration < 100 and run.metrics["booster.best_iteration"] == booster.best_iteration
    assert run.metrics["booster.best_score.valid_0.binary_logloss"] == pytest.approx(
        booster.best_score["valid_0"]["binary_logloss"])
    assert isinstance(booster, lightgbm.Booster)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_train_is_restored_after_a_failing_cell_and_the_run_failed(ip, library):
    module = pytest.importorskip(library)
    original = module.train
    cell = (f"%%track broken-{library}\n"
            f"import {library}\n"
            f"assert {library}.train is not _original\n"
            "raise ValueError('bad data')")
    ip.user_ns["_original"] = original
    assert not ip.run_cell(cell).success
    assert module.train is original
    run = mlops.get_run(f"broken-{library}")
    assert run.status == "failed" and run.error.startswith("ValueError: bad data")


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_no_autolog_leaves_train_alone(ip, library):
    module = pytest.importorskip(library)
    ip.user_ns["_original"] = module.train
    assert ip.run_cell(f"%%track quiet-{library} --no-autolog\nimport {library}\n"
                       f"assert {library}.train is _original").success
    assert mlops.get_run(f"quiet-{library}").params == {}


def test_track_without_either_library_imports_neither(home, tmp_path):
    script = (
        "import sys\n"
        "from IPython.testing.globalipapp import get_ipython\n"
        "ip = get_ipython()\n"
        "ip.run_line_magic('load_ext', 'mlops_nb')\n"
        "assert ip.run_cell('%%track plain\\nfrom sklearn.dummy import DummyClassifier\\n"
        "clf = DummyClassifier().fit([[0], [1]], [0, 1])').success\n"
        "import mlops_nb as mlops\n"
        "run = mlops.get_run('plain')\n"
        "assert 'models/clf.pkl' in run.artifacts and run.metrics == {}, run\n"
        "assert 'xgboost' not in sys.modules and 'lightgbm' not in sys.modules, 'a library was imported'\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
