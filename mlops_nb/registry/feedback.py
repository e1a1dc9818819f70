"""Feedback: the true labels of logged predictions, which often arrive hours later.

Labels name the prediction ids a service answered with. Every label is kept; when one
prediction gets several, the last one counts. Ids the prediction log does not hold are
reported back, not stored as if they were known.
"""

from __future__ import annotations

import json
import time

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry.models import check_model_name
from mlops_nb.registry.predictions import frame_of, logged_ids, logged_models, read_log
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


def model_of(store: Store, ids: list[str]) -> str:
    """The model whose prediction log holds (most of) these prediction ids."""
    wanted = set(ids)
    found = {model: len(wanted & logged_ids(store.home, model)) for model in logged_models(store.home)}
    best = max(found, key=found.get, default=None)
    if best is None or not found[best]:
        raise NotFoundError(f"no logged prediction has any of these ids (e.g. {ids[0]!r}); give the ids a "
                            "service answered with, or name the model with --model")
    return best


def read_labelled(store: Store, model: str, *, since: float | None = None, version: int | None = None,
                  columns: list[str] | None = None, categories: bool = False):
    """The prediction log (:func:`~mlops_nb.registry.predictions.read_log`) as a DataFrame with ``label``, each
    prediction's last label as it came (1 stays 1, "yes" stays "yes"; None where none came), and
    ``labelled_at``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = read_log(store.home, model, since=since, version=version, columns=columns, categories=categories)
    # A label comes after its prediction, so those from before ``since`` (less an hour, for the clocks of other
    # machines) stay in the database. Read in the table's own order (its rowid, id), no index, no sort; the last
    # label of each prediction counts. (Six times faster than asking SQL for the newest of each: 0.3 s against
    # 1.7 s over 300,000 labels, benchmarks/bench_monitor.py.)
    rows = store.query("SELECT prediction_id, label, received_at FROM feedback NOT INDEXED WHERE model = ? "
                       "AND received_at >= ? ORDER BY id", (model, since - 3600 if since else 0.0))
    last = {pid: k for k, (pid, _, _) in enumerate(rows)}
    chosen = [rows[k] for k in last.values()]
    decoded = {text: json.loads(text) for text in {label for _, label, _ in chosen}}
    at = pc.index_in(table["id"], value_set=pa.array(list(last), type=pa.string()))
    positions = at.fill_null(-1).to_numpy(zero_copy_only=False)
    frame = frame_of(table)
    labels = np.array([decoded[label] for _, label, _ in chosen] + [None], dtype=object)
    times = np.array([received for _, _, received in chosen] + [np.nan], dtype=float)
    frame["label"] = labels[positions]  # -1, the last entry: no label
    frame["labelled_at"] = times[positions]
    return frame
