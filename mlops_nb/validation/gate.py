"""The model gate: a candidate version against the model behind an alias, on the same data.

    decision = mlops.gate("churn/4", baseline="production", eval_data=test_df, target="churned",
                          rules={"accuracy": {"min": 0.80, "max_regression": 0.01},
                                 "roc_auc": {"max_regression": 0.02}},
                          segment="region")
    decision.passed, decision.results        # every rule, overall and per segment, with values
    mlops.promote("churn", 4)                # moves the alias only if the gate passed

Rules: ``min`` / ``max`` (absolute), ``max_regression`` (how much worse than the
baseline the candidate may be, in the metric's own units; for error metrics such
as ``mae`` worse means higher). With ``segment``, every rule also holds in every
segment. With ``sensitive="gender"``, the card also holds the fairness of the candidate's
decisions across that column's groups (:mod:`mlops_nb.validation.fairness`), and rules may
hold them: ``{"demographic_parity_difference": {"max": 0.1}}``. The decision, with a model card
(metrics, per-segment metrics, permutation feature importance, fairness), is stored with the
candidate version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

from mlops_nb.errors import InvalidInputError
from mlops_nb.validation.fairness import LOWER_IS_FAIRER, MEASURES as FAIRNESS, fairness

HIGHER_IS_BETTER = ("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc", "r2")
LOWER_IS_BETTER = ("log_loss", "mae", "mse", "rmse")
METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
RULE_KEYS = ("min", "max", "max_regression")


@dataclass
class GateDecision:
    candidate: str
    baseline: str | None
    passed: bool
    results: Any                       # DataFrame: metric, segment, candidate, baseline, rule, limit, passed, detail
    card: dict = field(default_factory=dict)
    id: int | None = None
    source: str = "exploratory"        # pipeline: the version's decision of record

    def __str__(self) -> str:
        head = (f"gate {'PASSED' if self.passed else 'FAILED'}: {self.candidate} against "
                f"{self.baseline or 'no baseline'}")
        lines = [f"  {'ok  ' if r.passed else 'FAIL'} {r.detail}" for r in self.results.itertuples()]
        return "\n".join([head, *lines])

    __repr__ = __str__

    def save_html(self, path):
        from mlops_nb.validation.report import save_html

        return save_html(self._repr_html_(), path, title=f"mlops-nb gate: {self.candidate}")

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.passed else "#c62828"
        rows = "".join(f"<tr style='color:{'#2e7d32' if r.passed else '#c62828'}'><td>{'pass' if r.passed else 'FAIL'}"
                       f"</td><td>{escape(r.metric)}</td><td>{escape(str(r.segment))}</td><td>{_f(r.candidate)}</td>"
                       f"<td>{_f(r.baseline)}</td><td>{escape(r.rule)}</td><td>{_f(r.limit)}</td></tr>"
                       for r in self.results.itertuples())
        return (f"<div style='font-weight:600;color:{colour}'>gate {'passed' if self.passed else 'failed'}: "
                f"{escape(self.candidate)} against {escape(self.baseline or 'no baseline')}</div>"
                "<table><thead><tr><th></th><th>metric</th><th>segment</th><th>candidate</th><th>baseline</th>"
                f"<th>rule</th><th>limit</th></tr></thead><tbody>{rows}</tbody></table>"
                + card_html(self.card))


def evaluate_gate(candidate, candidate_model, baseline=None, baseline_model=None, eval_data=None,
                  rules: dict | None = None, *, target: str | None = None, segment: str | None = None,
                  importance: bool = True, sensitive: str | None = None) -> GateDecision:
    """Judge ``candidate_model`` against ``baseline_model`` (None for a first model) on the same data.

    ``candidate`` and ``baseline`` are the registered versions the models came from (their
    ``ref`` names them, their ``signature`` picks the input columns). Pure: the caller loads
    the models and stores the decision (``mlops.gate`` does both)."""
    import pandas as pd

    rules = _check_rules(rules, sensitive)
    fair_rules = {k: v for k, v in rules.items() if k in FAIRNESS}
    rules = {k: v for k, v in rules.items() if k not in FAIRNESS}
    X, y, segments = _eval_frame(eval_data, target, segment)
    groups = _column(X, sensitive, "sensitive") if sensitive is not None else None
    cand_X = _inputs(X, candidate)
    base_X = _inputs(X, baseline) if baseline is not None else None
    parts = [("all", slice(None))] + ([(str(k), (segments == k).to_numpy()) for k in sorted(segments.unique(), key=str)]
                                      if segments is not None else [])
    results, segment_metrics = [], {}
    for label, mask in parts:
        cand_metrics = compute_metrics(candidate_model, cand_X[mask], y[mask], rules)
        base_metrics = compute_metrics(baseline_model, base_X[mask], y[mask], rules) if baseline_model is not None \
            else {}
        segment_metrics[label] = {"candidate": cand_metrics, "baseline": base_metrics, "n": int(len(y[mask]))}
        for metric, rule in rules.items():
            results.extend(_judge(metric, rule, label, cand_metrics[metric], base_metrics.get(metric)))
    fair = None
    if groups is not None:
        fair = {"column": sensitive, "candidate": fairness(y, candidate_model.predict(cand_X), groups),
                "baseline": fairness(y, baseline_model.predict(base_X), groups) if baseline_model is not None
                else None}
        for metric, rule in fair_rules.items():
            base = fair["baseline"][metric] if fair["baseline"] else None
            results.extend(_judge(metric, rule, "all", fair["candidate"][metric], base))
    frame = pd.DataFrame(results, columns=["metric", "segment", "candidate", "baseline", "rule", "limit", "passed",
                                           "detail"])
    passed = bool(frame["passed"].all()) if len(frame) else True
    card = {"metrics": segment_metrics["all"], "segments": {k: v for k, v in segment_metrics.items() if k != "all"},
            "segment_column": segment, "n_eval": int(len(y)),
            "importance": _importance(candidate_model, cand_X, y, next(iter(rules), "accuracy")) if importance
            else None, "fairness": fair}
    return GateDecision(candidate.ref, baseline.ref if baseline is not None else None, passed, frame, card)


def describe_model(version, model, eval_data, *, target: str | None = None, segment: str | None = None,
                   sensitive: str | None = None, importance: bool = True) -> dict:
    """A model card's evaluation of any version (gated or not) on ``eval_data``: its metrics overall and
    per segment, permutation importance, and fairness across ``sensitive``'s groups."""
    X, y, segments = _eval_frame(eval_data, target, segment)
    groups = _column(X, sensitive, "sensitive") if sensitive is not None else None
    X = _inputs(X, version)
    classifier = hasattr(model, "predict_proba") or hasattr(model, "classes_")
    names = (["accuracy", "f1", "roc_auc"] if hasattr(model, "predict_proba") and len(set(y)) == 2 else
             ["accuracy", "balanced_accuracy"]) if classifier else ["r2", "mae", "rmse"]
    metrics = compute_metrics(model, X, y, names)
    per_segment = {}
    if segments is not None:
        for key in sorted(segments.unique(), key=str):
            mask = (segments == key).to_numpy()
            per_segment[str(key)] = {"candidate": compute_metrics(model, X[mask], y[mask], names),
                                     "n": int(mask.sum())}
    fair = ({"column": sensitive, "candidate": fairness(y, model.predict(X), groups), "baseline": None}
            if groups is not None else None)
    return {"metrics": {"candidate": metrics, "baseline": {}, "n": int(len(y))}, "segments": per_segment,
            "segment_column": segment, "n_eval": int(len(y)), "fairness": fair,
            "importance": _importance(model, X, y, names[0]) if importance else None}


def compute_metrics(model, X, y, names) -> dict[str, float]:
    from sklearn import metrics as m

    out: dict[str, float] = {}
    predicted = model.predict(X) if len(X) else []
    for name in names:
        if not len(X):
            out[name] = math.nan
            continue
        if name in ("roc_auc", "log_loss"):
            if not hasattr(model, "predict_proba"):
                raise InvalidInputError(f"metric {name} needs a model with predict_proba")
            proba = model.predict_proba(X)
            proba = proba[:, 1] if proba.shape[1] == 2 else proba
            try:
                out[name] = float(m.roc_auc_score(y, proba, multi_class="ovr") if name == "roc_auc"
                                  else m.log_loss(y, proba, labels=getattr(model, "classes_", None)))
            except ValueError:  # one class only in a segment
                out[name] = math.nan
        elif name in ("f1", "precision", "recall"):
            average = "binary" if len(set(y)) <= 2 and set(y) <= {0, 1, True, False} else "weighted"
            scorer = {"f1": m.f1_score, "precision": m.precision_score, "recall": m.recall_score}[name]
            out[name] = float(scorer(y, predicted, average=average, zero_division=0))
        elif name == "rmse":
            out[name] = float(math.sqrt(m.mean_squared_error(y, predicted)))
        else:
            scorer = {"accuracy": m.accuracy_score, "balanced_accuracy": m.balanced_accuracy_score, "r2": m.r2_score,
                      "mae": m.mean_absolute_error, "mse": m.mean_squared_error}[name]
            out[name] = float(scorer(y, predicted))
    return out


def _judge(metric: str, rule: dict, segment: str, cand: float, base: float | None) -> list[dict]:
    out = []
    where = "" if segment == "all" else f" in segment {segment}"
    for key in ("min", "max"):
        if key in rule:
            limit = rule[key]
            ok = (cand >= limit) if key == "min" else (cand <= limit)
            ok = bool(ok) and not math.isnan(cand)
            out.append({"metric": metric, "segment": segment, "candidate": cand, "baseline": base, "rule": key,
                        "limit": limit, "passed": ok,
                        "detail": f"{metric}{where} = {cand:.4g}, {'at least' if key == 'min' else 'at most'} {limit:g}"})
    if "max_regression" in rule:
        limit = rule["max_regression"]
        if base is None or math.isnan(base):
            out.append({"metric": metric, "segment": segment, "candidate": cand, "baseline": None,
                        "rule": "max_regression", "limit": limit, "passed": True,
                        "detail": f"{metric}{where}: no baseline value to compare with"})
        else:
            worse = (cand - base) if metric in LOWER_IS_BETTER or metric in LOWER_IS_FAIRER else (base - cand)
            ok = bool(worse <= limit) and not math.isnan(cand)
            out.append({"metric": metric, "segment": segment, "candidate": cand, "baseline": base,
                        "rule": "max_regression", "limit": limit, "passed": ok,
                        "detail": f"{metric}{where} = {cand:.4g} against {base:.4g} ({_by(worse)}, "
                                  f"allowed {limit:g} worse)"})
    return out


def _by(worse: float) -> str:
    if worse > 0:
        return f"worse by {worse:.4g}"
    return f"better by {-worse:.4g}" if worse < 0 else "as good"


def _check_rules(rules: dict | None, sensitive: str | None = None) -> dict:
    if not rules or not isinstance(rules, dict):
        raise InvalidInputError("gate needs rules, e.g. {'accuracy': {'min': 0.8, 'max_regression': 0.01}}")
    for metric, rule in rules.items():
        if metric not in METRICS + FAIRNESS:
            raise InvalidInputError(f"unknown gate metric {metric!r}; known: {', '.join(METRICS + FAIRNESS)}")
        if metric in FAIRNESS and sensitive is None:
            raise InvalidInputError(f"a rule on {metric} needs the sensitive column it is measured across: "
                                    "sensitive='<column>'")
        if not isinstance(rule, dict) or not rule or set(rule) - set(RULE_KEYS):
            raise InvalidInputError(f"gate rule for {metric!r} must use {', '.join(RULE_KEYS)}, got {rule!r}")
    return rules


def _eval_frame(eval_data, target, segment):
    if isinstance(eval_data, tuple) and len(eval_data) == 2:
        X, y = eval_data
        import pandas as pd

        y = pd.Series(y).reset_index(drop=True)
        X = X.reset_index(drop=True) if hasattr(X, "reset_index") else X
        segments = None
        if segment is not None:
            if not hasattr(X, "columns") or segment not in X.columns:
                raise InvalidInputError(f"segment column {segment!r} is not in the evaluation data")
            segments = X[segment]
        return X, y.to_numpy(), segments
    if not (hasattr(eval_data, "columns") and hasattr(eval_data, "dtypes")):
        raise InvalidInputError("eval_data is a DataFrame (with target=...) or an (X, y) pair")
    if len(eval_data) == 0:
        raise InvalidInputError("eval_data is empty: the gate needs evaluation rows")
    if target not in eval_data.columns:
        raise InvalidInputError(f"target column {target!r} is not in eval_data; its columns: "
                                f"{', '.join(map(str, list(eval_data.columns)[:10]))}")
    if segment is not None and segment not in eval_data.columns:
        raise InvalidInputError(f"segment column {segment!r} is not in eval_data")
    data = eval_data.reset_index(drop=True)
    return data.drop(columns=[target]), data[target].to_numpy(), data[segment] if segment else None


def _column(X, name: str, role: str):
    if not hasattr(X, "columns") or name not in X.columns:
        raise InvalidInputError(f"{role} column {name!r} is not in the evaluation data")
    return X[name].to_numpy()


def _inputs(X, version):
    """The columns a model was trained on (its signature), in that order."""
    inputs = (version.signature or {}).get("inputs") if version is not None else None
    if inputs and hasattr(X, "columns"):
        names = [i["name"] for i in inputs]
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise InvalidInputError(f"{version.ref} needs column(s) {', '.join(missing[:5])} that eval_data lacks")
        return X[names]
    return X


def _importance(model, X, y, metric: str) -> list[dict] | None:
    from sklearn.inspection import permutation_importance

    scoring = {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy", "f1": "f1_weighted",
               "precision": "precision_weighted", "recall": "recall_weighted", "roc_auc": "roc_auc",
               "log_loss": "neg_log_loss", "r2": "r2", "mae": "neg_mean_absolute_error",
               "mse": "neg_mean_squared_error", "rmse": "neg_root_mean_squared_error"}[metric]
    sample = slice(None) if len(y) <= 5000 else slice(0, 5000)
    try:
        result = permutation_importance(model, X[sample], y[sample], n_repeats=5, random_state=0, scoring=scoring)
    except ValueError:
        return None
    names = list(X.columns) if hasattr(X, "columns") else [f"x{i}" for i in range(X.shape[1])]
    order = result.importances_mean.argsort()[::-1][:15]
    return [{"feature": str(names[i]), "importance": float(result.importances_mean[i]),
             "std": float(result.importances_std[i])} for i in order]


def card_html(card: dict) -> str:
    if not card:
        return ""
    parts = []
    metrics = card.get("metrics", {})
    if metrics:
        rows = "".join(f"<tr><td>{escape(k)}</td><td>{_f(v)}</td><td>{_f(metrics.get('baseline', {}).get(k))}</td></tr>"
                       for k, v in metrics.get("candidate", {}).items())
        parts.append(f"<b>metrics</b> ({card.get('n_eval')} rows)<table><tr><th></th><th>candidate</th>"
                     f"<th>baseline</th></tr>{rows}</table>")
    if card.get("segments"):
        rows = "".join(f"<tr><td>{escape(seg)}</td><td>{v['n']}</td>" +
                       "".join(f"<td>{escape(k)} {_f(x)}</td>" for k, x in v["candidate"].items()) + "</tr>"
                       for seg, v in card["segments"].items())
        parts.append(f"<b>per {escape(str(card.get('segment_column')))}</b><table>{rows}</table>")
    if card.get("importance"):
        rows = "".join(f"<tr><td>{escape(i['feature'])}</td><td>{i['importance']:.4f} ± {i['std']:.4f}</td></tr>"
                       for i in card["importance"])
        parts.append(f"<b>permutation feature importance</b><table>{rows}</table>")
    fair = card.get("fairness")
    if fair:
        measures = fair["candidate"]
        rows = "".join(f"<tr><td>{escape(g)}</td><td>{v['n']}</td><td>{_f(v['selection_rate'])}</td>"
                       f"<td>{_f(v['tpr'])}</td><td>{_f(v['fpr'])}</td></tr>" for g, v in measures["groups"].items())
        summary = ", ".join(f"{escape(k)} {_f(measures[k])}" for k in FAIRNESS)
        parts.append(f"<b>fairness across {escape(str(fair['column']))}</b> ({summary})<table><tr><th></th>"
                     f"<th>n</th><th>selection rate</th><th>TPR</th><th>FPR</th></tr>{rows}</table>")
    return "<div style='font-size:12px'>" + "".join(parts) + "</div>"


def _f(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else escape(str(value))
