"""Batch scoring: ``mlops-nb predict churn data.csv -o scored.csv``, logged like a service's predictions."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry.predictions import PredictionLog
from mlops_nb.serving.model import ServedModel


def read_table(path: str | Path):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no file {path}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} is not a CSV file ({str(exc).splitlines()[0]}); give a .csv or "
                                ".parquet file") from None


def score_file(home: str | Path, ref: str, source: str | Path, output: str | Path, *, log: bool = True) -> dict:
    """Score every row of ``source`` with the version behind ``ref``; write them to ``output`` with
    ``prediction``, one ``proba_<class>`` column per class where the model gives them, and ``prediction_id``
    (what feedback names); log the predictions. Columns the model does not take are kept, not scored."""
    served = ServedModel(home, ref)
    current = served.current
    frame = read_table(source)
    columns = current.signature.columns if current.signature else list(frame.columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"{source} lacks column(s) {', '.join(missing)} that {current.name}/"
                                f"{current.version} takes ({', '.join(columns)})")
    if not len(frame):
        raise InvalidInputError(f"{source} has no rows to score")
    started = time.perf_counter()
    features = frame[columns]
    try:
        predictions = current.model.predict(features)
        probabilities = current.model.predict_proba(features) if hasattr(current.model, "predict_proba") else None
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{current.name}/{current.version} cannot score {source}: "
                                f"{str(exc).splitlines()[0][:300]}") from None
    latency_ms = (time.perf_counter() - started) * 1000
    values = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    ids = [uuid.uuid4().hex for _ in values]
    scored = frame.copy()
    scored["prediction"] = values
    if probabilities is not None:
        for k, label in enumerate(getattr(current.model, "classes_", range(probabilities.shape[1]))):
            scored[f"proba_{label}"] = probabilities[:, k]
    scored["prediction_id"] = ids
    output = Path(output)
    scored.to_parquet(output, index=False) if output.suffix == ".parquet" else scored.to_csv(output, index=False)
    if log:
        prediction_log = PredictionLog(home, current.name)
        prediction_log.add(ids=ids, version=current.version, features=features, predictions=values,
                           probabilities=probabilities.tolist() if probabilities is not None else None,
                           latency_ms=latency_ms)
        prediction_log.flush()
    return {"model": current.name, "version": current.version, "rows": len(scored), "output": str(output),
            "logged": log}
