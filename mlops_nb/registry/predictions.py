"""The prediction log: every prediction a service made, append-only, in Parquet files under the registry.

    .mlops/predictions/<model>/date=2026-12-01/part-<unix ms>-<pid>-<n>.parquet

One row per prediction: ``id``, ``time``, ``model``, ``version``, ``latency_ms``,
``prediction``, the class probabilities (``proba``, where the model gives them) and the
input features (``feature.<name>``). Rows are buffered and written in batches; each file
is written beside its final name and renamed into place, so a killed server loses at most
what it had not flushed and never leaves a file half-written.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry.models import check_model_name

FLUSH_SECONDS = 1.0
FLUSH_ROWS = 20_000


def log_folder(home: str | Path, model: str) -> Path:
    return Path(home) / "predictions" / check_model_name(model)


class PredictionLog:
    """A buffer of predictions for one model, flushed to a new Parquet file every ``FLUSH_SECONDS``
    (by :meth:`flush_if_due`, which a server calls from a background thread) or ``FLUSH_ROWS`` rows."""

    def __init__(self, home: str | Path, model: str):
        self.folder = log_folder(home, model)
        self.model = model
        self._rows: list[dict] = []
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()
        self._written = 0

    def add(self, *, ids: list[str], version: int, features, predictions: list, probabilities: list | None,
            latency_ms: float) -> None:
        now = time.time()
        records = features.to_dict(orient="records")
        rows = []
        for i, (record, prediction) in enumerate(zip(records, predictions)):
            row = {"id": ids[i], "time": now, "model": self.model, "version": version, "latency_ms": latency_ms,
                   "prediction": json.dumps(prediction), "proba": probabilities[i] if probabilities else None}
            row.update({f"feature.{k}": v for k, v in record.items()})
            rows.append(row)
        with self._lock:
            self._rows.extend(rows)
            full = len(self._rows) >= FLUSH_ROWS
        if full:
            self.flush()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> int:
        """Write what is buffered as one new file; how many rows went."""
        import pandas as pd

        with self._lock:
            rows, self._rows = self._rows, []
            self._flushed_at = time.monotonic()
        if not rows:
            return 0
        day = datetime.fromtimestamp(rows[0]["time"], tz=timezone.utc).strftime("%Y-%m-%d")
        folder = self.folder / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        self._written += 1
        name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{self._written}.parquet"
        tmp = folder / f".{name}.tmp"
        pd.DataFrame(rows).to_parquet(tmp, index=False)
        os.replace(tmp, folder / name)  # whole or absent: never a half-written partition
        return len(rows)


def read_predictions(home: str | Path, model: str, *, since: float | None = None,
                     version: int | None = None):
    """Every logged prediction of ``model`` (optionally since a time, of one version), oldest first."""
    import pandas as pd

    folder = log_folder(home, model)
    files = sorted(folder.glob("date=*/part-*.parquet")) if folder.is_dir() else []
    if not files:
        raise NotFoundError(f"no predictions of {model!r} are logged yet (serve it with `mlops-nb serve {model}`)")
    frame = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
    if since is not None:
        if not isinstance(since, (int, float)):
            raise InvalidInputError(f"since is a time in seconds (time.time()), got {since!r}")
        frame = frame[frame["time"] >= since]
    if version is not None:
        frame = frame[frame["version"] == version]
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    frame["prediction"] = frame["prediction"].map(json.loads)
    return frame


def logged_ids(home: str | Path, model: str) -> set[str]:
    """The ids of every prediction logged for ``model`` (reading only that column)."""
    import pandas as pd

    folder = log_folder(home, model)
    files = sorted(folder.glob("date=*/part-*.parquet")) if folder.is_dir() else []
    return {i for path in files for i in pd.read_parquet(path, columns=["id"])["id"]}
