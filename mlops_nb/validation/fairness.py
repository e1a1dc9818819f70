"""Fairness of a classifier's decisions across the groups of a sensitive column, as fairlearn defines it.

Per group: its size, its selection rate (the share predicted positive), its true positive rate
and its false positive rate. Across groups (``fairlearn.metrics``' definitions, ``method="between_groups"``):

- ``demographic_parity_difference``: largest minus smallest selection rate (0 is parity);
- ``demographic_parity_ratio``: smallest over largest selection rate (1 is parity);
- ``equalized_odds_difference``: the larger of the TPR difference and the FPR difference;
- ``equalized_odds_ratio``: the smaller of the TPR ratio and the FPR ratio.

A gate rule can hold any of the four (``{"demographic_parity_difference": {"max": 0.1}}``).
Computed here with numpy (fairlearn is not a dependency); a test checks them against fairlearn's.
"""

from __future__ import annotations

import math

import numpy as np

LOWER_IS_FAIRER = ("demographic_parity_difference", "equalized_odds_difference")
HIGHER_IS_FAIRER = ("demographic_parity_ratio", "equalized_odds_ratio")
MEASURES = LOWER_IS_FAIRER + HIGHER_IS_FAIRER


def fairness(y_true, y_pred, groups, pos_label=1) -> dict:
    """``{"groups": {group: {n, selection_rate, tpr, fpr}}, <measure>: value, ...}`` for binary decisions."""
    truth = np.asarray(y_true) == pos_label
    chosen = np.asarray(y_pred) == pos_label
    groups = np.asarray(groups).astype(str)
    per_group = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        positives, negatives = truth[mask], ~truth[mask]
        per_group[group] = {"n": int(mask.sum()), "selection_rate": _rate(chosen[mask]),
                            "tpr": _rate(chosen[mask][positives]), "fpr": _rate(chosen[mask][negatives])}
    out = {"groups": per_group}
    selection = [g["selection_rate"] for g in per_group.values()]
    tpr = [g["tpr"] for g in per_group.values()]
    fpr = [g["fpr"] for g in per_group.values()]
    out["demographic_parity_difference"] = _difference(selection)
    out["demographic_parity_ratio"] = _ratio(selection)
    out["equalized_odds_difference"] = max(_difference(tpr), _difference(fpr))
    out["equalized_odds_ratio"] = min(_ratio(tpr), _ratio(fpr))
    return out


def _rate(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else math.nan


def _difference(values: list[float]) -> float:
    return float(max(values) - min(values))


def _ratio(values: list[float]) -> float:
    low, high = min(values), max(values)
    if high == 0:
        return 1.0 if low == 0 else math.nan
    return float(low / high)
