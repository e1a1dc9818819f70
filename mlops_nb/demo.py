"""The tracking demo behind `make demo`: experiment, compare, register, promote, roll back.

Uses scikit-learn's bundled breast-cancer data, so nothing is downloaded.
"""

from __future__ import annotations

import time
from pathlib import Path

EXPERIMENT = "demo-breast-cancer"
MODEL = "cancer-classifier"


def run_demo(directory: str | Path = "demo") -> dict:
    """Run the demo in ``directory`` (its registry is ``directory/.mlops``); return what it made."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mlops_nb as mlops
    from mlops_nb import render
    from mlops_nb.registry import models, search

    out = render.console()
    started = time.perf_counter()
    home = Path(directory).resolve() / ".mlops"
    mlops.set_home(home)
    out.print(f"[bold]mlops-nb demo[/] - registry: {home / 'registry.db'}\n")

    frame = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame["target"])
    X_train, y_train = train.drop(columns="target"), train["target"]
    X_test, y_test = test.drop(columns="target"), test["target"]

    candidates = [
        ("logreg", {"C": 0.01}, lambda p: make_pipeline(StandardScaler(), LogisticRegression(C=p["C"], max_iter=500))),
        ("logreg", {"C": 1.0}, lambda p: make_pipeline(StandardScaler(), LogisticRegression(C=p["C"], max_iter=500))),
        ("forest", {"n_estimators": 50, "max_depth": 3},
         lambda p: RandomForestClassifier(n_estimators=p["n_estimators"], max_depth=p["max_depth"], random_state=0)),
        ("forest", {"n_estimators": 100, "max_depth": 8},
         lambda p: RandomForestClassifier(n_estimators=p["n_estimators"], max_depth=p["max_depth"], random_state=0)),
    ]
    out.print("1. Train four candidates; each is a run with params, metrics, datasets and its model")
    run_ids = []
    for family, params, build in candidates:
        with mlops.start_run(experiment=EXPERIMENT, name=f"{family}-" + "-".join(f"{k}{v}" for k, v in params.items()),
                             params={"model": family, **params}, tags={"demo": "tracking"}) as run:
            mlops.log_dataset(train, "breast-cancer", role="train")
            mlops.log_dataset(test, "breast-cancer", role="test")
            model = build(params).fit(X_train, y_train)
            proba = model.predict_proba(X_test)[:, 1]
            predicted = (proba >= 0.5).astype(int)
            for step, threshold in enumerate((0.3, 0.4, 0.5, 0.6, 0.7)):
                mlops.log_metric("accuracy_at_threshold", accuracy_score(y_test, proba >= threshold), step=step)
            mlops.log_metrics({"accuracy": accuracy_score(y_test, predicted), "f1": f1_score(y_test, predicted),
                               "roc_auc": roc_auc_score(y_test, proba)})
            mlops.log_model(model, "model", X=X_train)
            run_ids.append(run.id)
            out.print(f"   run {run.id[:8]} {run.name}")

    store = mlops.tracking.get_store()
    out.print("\n2. Compare runs: mlops.search_runs(\"params.model = 'forest' or metrics.roc_auc > 0.99\")")
    frame = mlops.search_runs("params.model = 'forest' or metrics.roc_auc > 0.99",
                              order_by=["metrics.roc_auc DESC"], experiment=EXPERIMENT)
    out.print(frame[["name", "params.model", "metrics.accuracy", "metrics.roc_auc"]].to_string(index=False))

    ranked = search.search_run_rows(store, order_by=["metrics.roc_auc DESC", "metrics.accuracy DESC"],
                                    experiment=EXPERIMENT)
    best, runner_up = ranked[0], ranked[1]
    out.print(f"\n3. Register the two best as versions of '{MODEL}' and promote")
    v_best = mlops.register_model(best["run_id"], MODEL)
    v_next = mlops.register_model(runner_up["run_id"], MODEL)
    mlops.set_alias(MODEL, v_best.version, "production", reason="best roc_auc on the test split")
    mlops.set_alias(MODEL, v_next.version, "production", reason="demo: promote the runner-up")
    out.print(f"   production -> version {v_next.version} ({runner_up['name']})")
    back = mlops.rollback(MODEL, "production", reason="demo: roll back")
    out.print(f"4. Roll back: production -> version {back.version} ({best['name']})")

    loaded = mlops.load_model(f"{MODEL}@production")
    accuracy = accuracy_score(y_test, loaded.predict(X_test))
    out.print(f"5. mlops.load_model('{MODEL}@production') (sha256 checked): test accuracy {accuracy:.4f}\n")

    render.runs_table(search.search_run_rows(store, experiment=EXPERIMENT, order_by=["metrics.roc_auc DESC"]))
    versions = models.list_versions(store, MODEL)
    render.model_detail(MODEL, versions, {v.version: mlops.get_run(v.run_id).metrics for v in versions},
                        models.alias_history(store, MODEL))
    out.print(f"\nDone in {time.perf_counter() - started:.1f} s. Look around with:\n"
              f"  .venv/bin/mlops-nb --home {home} runs ls\n"
              f"  .venv/bin/mlops-nb --home {home} runs show {best['run_id'][:8]}\n"
              f"  .venv/bin/mlops-nb --home {home} runs compare {best['run_id'][:8]} {runner_up['run_id'][:8]}\n"
              f"  .venv/bin/mlops-nb --home {home} models show {MODEL}")
    return {"home": home, "runs": run_ids, "production": back.version, "best_run": best["run_id"],
            "accuracy": accuracy}
