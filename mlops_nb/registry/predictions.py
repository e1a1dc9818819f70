"""The prediction log: every prediction a service made, append-only, in Parquet files under the registry.

    .mlops/predictions/<model>/date=2026-12-01/part-<unix ms>-<pid>-<n>.parquet

One row per prediction: ``id``, ``time``, ``model``, ``version``, ``latency_ms``,
``prediction``, the class probabilities (``proba``, where the model gives them), the
input features (``feature.<name>``) and, for a service that filled them in from feature
views, the entity keys the request named (``entity.<name>``). Rows are buffered and written in batches; each file
is written beside its final name and renamed into place, so a killed server loses at most
what it had not flushed and never leaves a file half-written.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any, Callable, NamedTuple

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry.models import check_model_name

FLUSH_SECONDS = 1.0
FLUSH_ROWS = 100_000  # a bound on memory (~20 MB); each flush costs ~2 ms more than its rows, so not too few
log = logging.getLogger("mlops_nb.registry.predictions")


def log_folder(home: str | Path, model: str) -> Path:
    return Path(home) / "predictions" / check_model_name(model)


class _Added(NamedTuple):
    """One call of :meth:`PredictionLog.add`, kept as it came until the flush makes rows of it."""

    time: float
    version: int
    ids: list[str]
    features: Any  # a DataFrame
    predictions: Any  # a list, or the model's numpy array
    probabilities: list | None
    predict_proba: Callable | None
    latency_ms: float
    entities: Any = None  # a DataFrame of the entity keys the request named (serve --features), or None


class PredictionLog:
    """A buffer of predictions for one model, flushed to a new Parquet file by :meth:`flush_if_due` (which a
    server calls from a background thread) every ``FLUSH_SECONDS``, or sooner once it holds ``FLUSH_ROWS`` rows.

    :meth:`add` only keeps what it is given, so that an answer waits for nothing: the rows, their JSON
    and the class probabilities are made at the flush, for everything added since the last one at once.
    """

    def __init__(self, home: str | Path, model: str):
        self.folder = log_folder(home, model)
        self.model = model
        self._added: list[_Added] = []
        self._buffered = 0  # rows in self._added
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # one flush at a time: when flush() returns, all added before is on disk
        self._flushed_at = time.monotonic()
        self._written = 0
        # Loaded now rather than at the first flush: a background thread that imports while requests keep the
        # interpreter busy waits for it at every file it reads (seconds, under load).
        import pyarrow.parquet  # noqa: F401
        from threadpoolctl import ThreadpoolController  # scikit-learn's: finds the BLAS and OpenMP loaded

        self._threads = ThreadpoolController()

    def add(self, *, ids: list[str], version: int, features, predictions, probabilities: list | None = None,
            predict_proba: Callable | None = None, latency_ms: float, at: float | None = None,
            entities=None) -> None:
        """Log one answer (given at ``at``, by default now): a prediction per row of ``features`` (a list, or
        the model's numpy array), with its class probabilities given as a list (``probabilities``) or as the
        model's function that gives them (``predict_proba``, called at the flush)."""
        added = _Added(time.time() if at is None else at, version, ids, features, predictions, probabilities,
                       predict_proba, latency_ms, entities)
        with self._lock:
            self._added.append(added)
            self._buffered += len(ids)

    def flush_if_due(self) -> None:
        if self._buffered >= FLUSH_ROWS or time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> int:
        """Write what is buffered as one new file; how many rows went."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._writing:
            with self._lock:
                added, self._added, self._buffered = self._added, [], 0
                self._flushed_at = time.monotonic()
            if not added:
                return 0
            parts = [self._table(group) for group in _alike(added)]
            table = parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")
            day = datetime.fromtimestamp(added[0].time, tz=timezone.utc).strftime("%Y-%m-%d")
            folder = self.folder / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            self._written += 1
            name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{self._written}.parquet"
            tmp = folder / f".{name}.tmp"
            # Dictionary pages for the columns that repeat (model, version, labels, text), not for the ids
            # and decimals, where trying them costs more than the rest of the write; random hex ids do not
            # compress either (by a tenth), and not trying saves a sixth of the write.
            repeating = [f.name for f in table.schema if f.name != "id" and
                         (pa.types.is_string(f.type) or pa.types.is_integer(f.type))]
            compression = {name: "none" if name == "id" else "snappy" for name in table.column_names}
            pq.write_table(table, tmp, use_dictionary=repeating, compression=compression)
            os.replace(tmp, folder / name)  # whole or absent: never a half-written partition
            return table.num_rows

    def _table(self, group: list[_Added]):
        """The rows of adds alike (one version, the same feature columns), as one Arrow table."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        features = pd.concat([a.features for a in group], ignore_index=True)
        counts = [len(a.ids) for a in group]
        rows = sum(counts)
        columns = {"id": pa.array(list(chain.from_iterable(a.ids for a in group)), pa.string()),
                   "time": np.repeat([a.time for a in group], counts), "model": pa.repeat(self.model, rows),
                   "version": np.full(rows, group[0].version, dtype=np.int64),
                   "latency_ms": np.repeat([a.latency_ms for a in group], counts),
                   "prediction": _json_texts([a.predictions for a in group]),
                   "proba": self._probabilities(group, features)}
        # One thread: for these few columns, starting a pool at every flush costs more than it saves.
        given = pa.Table.from_pandas(features, preserve_index=False, nthreads=1)
        columns.update((f"feature.{name}", given[name]) for name in given.column_names)
        if group[0].entities is not None:
            keys = pa.Table.from_pandas(pd.concat([a.entities for a in group], ignore_index=True),
                                        preserve_index=False, nthreads=1)
            columns.update((f"entity.{name}", keys[name]) for name in keys.column_names)
        return pa.table(columns)

    def _probabilities(self, group: list[_Added], features):
        """The ``proba`` column: a list of class probabilities per row, or nulls."""
        import numpy as np
        import pyarrow as pa

        if group[0].predict_proba is not None:  # one call of the model for the whole group
            try:
                # On one thread: for the few columns of a log's rows, BLAS or OpenMP threads would mostly
                # spin, on the core that answers the requests.
                with self._threads.limit(limits=1):
                    proba = np.asarray(group[0].predict_proba(features), dtype=np.float64)
                if proba.ndim != 2:
                    raise ValueError(f"predict_proba gave a {proba.ndim}-dimensional array")
            except Exception as exc:  # the predictions are logged all the same, without their probabilities
                log.warning("mlops-nb: no probabilities logged for %s/%s: %s", self.model, group[0].version, exc)
                return pa.nulls(len(features))
            offsets = np.arange(0, proba.size + 1, proba.shape[1], dtype=np.int32)
            return pa.ListArray.from_arrays(offsets, proba.ravel())
        return pa.array([p for a in group for p in (a.probabilities or [None] * len(a.ids))])


def _alike(added: list[_Added]) -> list[list[_Added]]:
    """Consecutive adds that can make one frame: the same version, feature columns and kind of probabilities."""
    groups = []
    for a in added:
        last = groups[-1][-1] if groups else None
        if last is None or (a.version, a.predict_proba is None) != (last.version, last.predict_proba is None) \
                or not a.features.columns.equals(last.features.columns) \
                or (a.entities is None) != (last.entities is None) \
                or (a.entities is not None and not a.entities.columns.equals(last.entities.columns)):
            groups.append([])
        groups[-1].append(a)
    return groups


def _json_texts(parts: list):
    """The predictions of many adds as JSON texts, an Arrow column. A classifier repeats a few labels: each
    distinct value is encoded once, then taken for every row."""
    import numpy as np
    import pyarrow as pa

    if all(isinstance(p, np.ndarray) and p.ndim == 1 and p.dtype.kind in "biufU" for p in parts):
        # One dtype: Arrow finds the distinct values (as Python values, those of the answer's tolist()).
        encoded = pa.array(np.concatenate(parts)).dictionary_encode()
        distinct, codes = encoded.dictionary.to_pylist(), encoded.indices
    else:
        values = [v for p in parts for v in (p.tolist() if isinstance(p, np.ndarray) else p)]
        typed = len(set(map(type, values))) > 1  # then keyed by type too: 1, 1.0, True are equal keys, not JSON
        keys = list(zip(map(type, values), values)) if typed else values
        try:
            index = {key: k for k, key in enumerate(dict.fromkeys(keys))}
        except TypeError:  # unhashable (a list per row): one by one
            return pa.array([json.dumps(v) for v in values], pa.string())
        distinct = [key[1] if typed else key for key in index]
        codes = np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=len(keys))
    return pa.array([json.dumps(v) for v in distinct], pa.string()).take(codes)


def logged_models(home: str | Path) -> list[str]:
    """The models with a prediction log."""
    folder = Path(home) / "predictions"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def log_files(home: str | Path, model: str) -> list[Path]:
    folder = log_folder(home, model)
    return sorted(folder.glob("date=*/part-*.parquet")) if folder.is_dir() else []


def read_predictions(home: str | Path, model: str, *, since: float | None = None,
                     version: int | None = None, columns: list[str] | None = None):
    """Every logged prediction of ``model`` (optionally since a time, of one version), oldest first, as a
    DataFrame; ``columns`` reads only those (``id`` and ``time`` always come)."""
    return frame_of(read_log(home, model, since=since, version=version, columns=columns))


def read_log(home: str | Path, model: str, *, since: float | None = None, version: int | None = None,
             columns: list[str] | None = None, categories: bool = False):
    """The log as one Arrow table, oldest first. Files are read with pyarrow and their schemas unified (a
    batch of whole numbers and one with decimals make one float column); a partition of many small files
    is compacted into one as it is read. ``categories``: text features are read as dictionaries (pandas
    categoricals), as their files keep them, which is quicker to read and to count."""
    if since is not None and (isinstance(since, bool) or not isinstance(since, (int, float))):
        raise InvalidInputError(f"since is a time in seconds (time.time()), got {since!r}")
    if not log_files(home, model):  # said before pyarrow is needed: a project that never served has no log
        raise NotFoundError(f"no predictions of {model!r} are logged yet (serve it with `mlops-nb serve {model}`)")
    import pyarrow as pa
    import pyarrow.compute as pc

    _compact(log_folder(home, model))
    files = _unmerged(log_files(home, model))
    wanted = None if columns is None else list(dict.fromkeys(["id", "time", "version", *columns]))
    tables = [_read_file(path, wanted, since, categories) for path in files]
    table = pa.concat_tables([t for t in tables if t.num_rows] or tables[:1], promote_options="permissive")
    if version is not None:
        table = table.filter(pc.equal(table["version"], version))
    times = table["time"].to_numpy()
    if len(times) > 1 and (times[1:] < times[:-1]).any():  # files of several servers interleave
        table = table.take(times.argsort(kind="stable"))
    return table


def frame_of(table):
    """An Arrow table of the log as a DataFrame, the predictions decoded."""
    decoded = _decode(table["prediction"]) if "prediction" in table.column_names else None
    frame = table.drop_columns(["prediction"]).to_pandas() if decoded is not None else table.to_pandas()
    if decoded is not None:
        frame.insert(table.column_names.index("prediction"), "prediction", decoded)
    return frame


def _read_file(path: Path, columns: list[str] | None, since: float | None, categories: bool = False):
    """One file of the log (its columns that exist of ``columns``), its rows since ``since``; a file whose
    statistics say it ends before ``since`` is not read. pyarrow.parquet.ParquetFile, not read_table: that
    goes through pyarrow.dataset, a quarter of a second to import and slower per small file."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    if categories:
        import pyarrow as pa

        text = [f.name for f in file.schema_arrow if f.name.startswith("feature.") and pa.types.is_string(f.type)]
        file = pq.ParquetFile(path, read_dictionary=text) if text else file
    names = file.schema_arrow.names
    if since is not None and "time" in names:
        at = names.index("time")
        groups = [file.metadata.row_group(g).column(at).statistics for g in range(file.metadata.num_row_groups)]
        if groups and all(st is not None and st.has_min_max and st.max < since for st in groups):
            return file.schema_arrow.empty_table().select([c for c in columns if c in names] if columns else names)
    table = file.read(columns=[c for c in columns if c in names] if columns is not None else None)
    return table.filter(pc.greater_equal(table["time"], since)) if since is not None else table


def _decode(encoded):
    """The JSON-encoded predictions (an Arrow column) as values, each distinct one decoded once: numbers as
    a numeric array when they all are, else objects."""
    import numpy as np

    encoded = encoded.combine_chunks().dictionary_encode()
    values = [json.loads(text) for text in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)[codes] if values else np.empty(0, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float)[codes]
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return table[codes]


COMPACT_FILES = 64
_MERGED = b"mlops_nb.merged"  # a compacted file's metadata: the names of the files it holds


def _compact(folder: Path) -> None:
    """Merge the files of each partition that holds more than ``COMPACT_FILES`` into one: write the merged
    file (naming the files it holds), rename it into place, then remove those files. A reader that finds
    a merged file and one of its parts reads the merged file only; a writer only ever adds new files, so
    no row is lost or read twice."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for partition in sorted(folder.glob("date=*")) if folder.is_dir() else []:
        parts = _unmerged(sorted(partition.glob("part-*.parquet")))
        if len(parts) <= COMPACT_FILES:
            continue
        try:
            table = pa.concat_tables([pq.ParquetFile(p).read() for p in parts],
                                     promote_options="permissive")
            table = table.replace_schema_metadata({_MERGED: json.dumps([p.name for p in parts])})
            name = f"part-{int(time.time() * 1000)}-{os.getpid()}-compacted.parquet"
            tmp = partition / f".{name}.tmp"
            # Dictionary pages for the columns that repeat (model, version, labels, text); not for the
            # ids and decimals, where trying them costs more than the rest of the write.
            repeating = [f.name for f in table.schema if f.name != "id" and
                         (pa.types.is_string(f.type) or pa.types.is_integer(f.type))]
            pq.write_table(table, tmp, use_dictionary=repeating)
            os.replace(tmp, partition / name)
            for part in parts:
                part.unlink(missing_ok=True)
        except OSError:  # a registry this user may read but not write: read the parts as they are
            continue


def _unmerged(files: list[Path]) -> list[Path]:
    """The files to read: without those a compacted file already holds (left for a moment by compaction)."""
    import pyarrow.parquet as pq

    merged = set()
    for path in files:
        if path.name.endswith("-compacted.parquet"):
            metadata = pq.read_schema(path).metadata or {}
            merged.update((path.parent / name) for name in json.loads(metadata.get(_MERGED, b"[]")))
    return [p for p in files if p not in merged]


def logged_ids(home: str | Path, model: str) -> set[str]:
    """The ids of every prediction logged for ``model`` (reading only that column)."""
    import pyarrow.parquet as pq

    return {i for path in _unmerged(log_files(home, model))
            for i in pq.read_table(path, columns=["id"], partitioning=None)["id"].to_pylist()}
