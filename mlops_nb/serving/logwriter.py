"""The prediction log of a service, written by a child process.

The server's process only hands over what it answered: every tenth of a second its
background thread sends the answers since the last time (features, predictions, ids)
through a pipe. The child makes the rows, asks its own copy of the model for the class
probabilities and writes the Parquet files (:class:`~mlops_nb.registry.predictions.PredictionLog`),
on another core than the one answering requests. When the server dies, even by SIGKILL,
the child reads what was sent, writes it and exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from pathlib import Path

from mlops_nb.registry.predictions import FLUSH_SECONDS, PredictionLog

log = logging.getLogger("mlops_nb.serving")


class ChildProcessLog:
    """:class:`PredictionLog`'s ``add``/``flush_if_due``/``flush`` for a service, the writing done in a child."""

    def __init__(self, home: str | Path, model: str):
        context = multiprocessing.get_context("spawn")  # a fork would copy the server's threads and event loop
        self._conn, theirs = context.Pipe()
        self._child = context.Process(target=_write, args=(str(home), model, theirs),
                                      name="mlops-nb-prediction-log", daemon=True)
        self._child.start()
        theirs.close()
        self._added: list[tuple] = []
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # one sender at a time: what was added first is sent first

    def add(self, *, ids: list[str], version: int, features, predictions, probabilities: list | None = None,
            predict_proba=None, latency_ms: float, entities=None) -> None:
        # In the forms quickest to pickle: ids as one text, numbers as one array (a DataFrame's own
        # pickling costs several times more, in the process that answers).
        added = (time.time(), version, "\n".join(ids), _wire(features), predictions, probabilities,
                 predict_proba is not None, latency_ms, None if entities is None else _wire(entities))
        with self._lock:
            self._added.append(added)

    def flush_if_due(self) -> None:
        """Send what was added since the last call (the child writes it within ``FLUSH_SECONDS``)."""
        with self._sending:
            with self._lock:
                added, self._added = self._added, []
            if added:
                self._conn.send(("add", added))
            if not self._child.is_alive():
                raise OSError(f"the prediction log's writer stopped (exit code {self._child.exitcode})")

    def flush(self) -> None:
        """Everything added so far is on disk when this returns."""
        self.flush_if_due()
        with self._sending:
            self._conn.send(("flush", None))
            if not self._conn.poll(60):
                raise OSError("the prediction log's writer did not answer within 60 s")
            self._conn.recv()

    def close(self) -> None:
        try:
            self.flush()
            self._conn.send(("close", None))
        except (OSError, EOFError) as exc:
            log.warning("mlops-nb serve: the prediction log's writer: %s", exc)
        self._child.join(30)


def _wire(frame):
    """A frame of numbers in one block (as requests of decimals make them) as its columns and one 2-D array;
    any other frame as it is."""
    try:
        one_block = frame._mgr.nblocks == 1  # pandas' own count: no public call says it as cheaply
    except AttributeError:
        return frame
    if one_block:
        values = frame.to_numpy()
        if values.dtype.kind in "fiub":
            return frame.columns, values  # one Index object for a signature: pickled once a batch
    return frame


def _write(home: str, model: str, conn) -> None:
    """The child: write what the server sends, with the probabilities of each version's own model."""
    import pandas as pd

    from mlops_nb.registry import artifacts, models
    from mlops_nb.registry.store import open_store
    from mlops_nb.tracking import modelio

    prediction_log = PredictionLog(home, model)
    store = open_store(home)
    loaded: dict[int, object] = {}

    def predict_proba(version: int):
        if version not in loaded:
            try:
                found = models.get_version(store, model, version)
                served = modelio.deserialize_model(artifacts.read_verified(store.artifacts_dir, found.sha256))
                loaded.clear()  # the versions before the last are done with
                loaded[version] = getattr(served, "predict_proba", None)
            except Exception as exc:  # logged without probabilities rather than not at all
                log.warning("mlops-nb serve: no probabilities logged for %s/%s: %s", model, version, exc)
                loaded[version] = None
        return loaded[version]

    while True:
        try:
            if conn.poll(FLUSH_SECONDS / 10):
                kind, payload = conn.recv()
                if kind == "add":
                    for at, version, ids, features, predictions, probabilities, has_proba, latency, keys in payload:
                        features, keys = (pd.DataFrame(f[1], columns=f[0], copy=False) if isinstance(f, tuple)
                                          else f for f in (features, keys))
                        prediction_log.add(ids=ids.split("\n"), version=version, features=features,
                                           predictions=predictions,
                                           probabilities=probabilities, latency_ms=latency, at=at,
                                           predict_proba=predict_proba(version) if has_proba else None,
                                           entities=keys)
                elif kind == "flush":
                    prediction_log.flush()
                    conn.send(True)
                else:
                    prediction_log.flush()
                    return
            prediction_log.flush_if_due()
        except EOFError:  # the server is gone, killed maybe: write what it sent
            prediction_log.flush()
            return
        except OSError as exc:  # a full disk: say so, keep what came, try again
            log.warning("mlops-nb serve: cannot write the prediction log: %s", exc)
            time.sleep(FLUSH_SECONDS)
