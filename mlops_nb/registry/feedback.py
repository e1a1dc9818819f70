"""Feedback: the true labels of logged predictions, which often arrive hours later.

Labels name the prediction ids a service answered with. Every label is kept; when one
prediction gets several, the last one counts. Ids the prediction log does not hold are
reported back, not stored as if they were known.
"""

from __future__ import annotations

import json
import time

from mlops_nb.errors import InvalidInputError
from mlops_nb.registry.models import check_model_name
from mlops_nb.registry.predictions import logged_ids
from mlops_nb.registry.store import Store


def record_feedback(store: Store, model: str, ids: list, labels: list) -> dict:
    """Store the labels of known predictions; ``{"stored": n, "unknown": [ids the log does not hold]}``."""
    check_model_name(model)
    if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels):
        raise InvalidInputError("feedback takes a list of prediction ids and a list of labels of the same length")
    if not all(isinstance(i, str) and i for i in ids):
        raise InvalidInputError("prediction ids are the texts a service answered with (the ids of its answer)")
    try:
        encoded = [json.dumps(label) for label in labels]
    except (TypeError, ValueError):
        raise InvalidInputError("labels are JSON values: numbers, text, booleans") from None
    known = logged_ids(store.home, model)
    unknown = [i for i in ids if i not in known]
    rows = [(model, i, label, time.time()) for i, label in zip(ids, encoded) if i in known]
    if rows:
        with store.transaction() as conn:
            conn.executemany("INSERT INTO feedback (model, prediction_id, label, received_at) VALUES (?, ?, ?, ?)",
                             rows)
    return {"stored": len(rows), "unknown": unknown}


def latest_labels(store: Store, model: str) -> dict[str, tuple]:
    """prediction id -> (its last label, when it came)."""
    rows = store.query("SELECT prediction_id, label, received_at FROM feedback WHERE model = ? ORDER BY id",
                       (model,))
    return {pid: (json.loads(label), at) for pid, label, at in rows}
