"""Where a feature view's values come from, and ``materialize``: reading them from there into the view.

    source: {files: "data/stats/*.parquet"}                        # CSV or Parquet files (a glob)
    source: {sql: QUERY, url: $CRM_URL}                            # a team's database, through SQLAlchemy
    source: {step: extract}                                        # a pipeline step writes it

A materialization reads the source and writes, as the view's next version, the rows the view does not
hold yet (by entity and time: a row that arrives late still gets in, one read before is not written
twice); ``full=True`` writes every row, for a correction of old values. A query may use ``:since`` (the
newest time already written, or 1970) to read fewer rows itself. The database URL is best given as an environment variable (``url: $CRM_URL``), so no password is
written in features.yaml. A view written by a step is written by running its pipeline.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.features.tables import check_frame, write_features
from mlops_nb.features.views import FeatureView
from mlops_nb.registry import features as feature_store


def materialize(store, view: FeatureView, root: Path, *, full: bool = False, run_id: str | None = None) -> dict:
    """Read ``view``'s source (files relative to ``root``, the folder of features.yaml) and write its new rows."""
    import pandas as pd

    source = view.source
    if not source:
        raise InvalidInputError(f"feature view {view.name!r} has no source: add source: {{files: GLOB}} or "
                                "{sql: QUERY, url: URL} to it in features.yaml, or write it with mlops.write_features")
    if "step" in source:
        raise InvalidInputError(f"feature view {view.name!r} is written by step {source['step']!r}: run its pipeline "
                                "(mlops-nb run), whose step writes it with mlops.write_features")
    written = feature_store.versions(store, view.name)
    newest = max((w["max_time"] for w in written if w["max_time"] is not None), default=None)
    since = None if full or newest is None else pd.Timestamp(newest, unit="s")
    if "files" in source:
        frame, read_from = _files(root, source["files"], view)
    else:
        frame, read_from = _sql(source, since, view)
    frame = check_frame(view, frame)
    read = len(frame)
    if not full and written:
        frame = _not_written(store, view, frame, written)
    if frame.empty:
        return {"view": view.name, "version": None, "rows": 0, "source": read_from,
                "note": f"the view holds all {read:,} rows already" if read else "the source holds no rows"}
    return {**write_features(store, view, frame, run_id), "source": read_from}


def _not_written(store, view: FeatureView, frame, written: list[dict]):
    """The rows of ``frame`` whose entity and time no earlier write of the view holds."""
    import pandas as pd

    from mlops_nb.registry import artifacts

    keys = [*view.entities, view.timestamp]
    held = pd.concat([pd.read_parquet(artifacts.blob_path(store.artifacts_dir, w["sha256"]), columns=keys)
                      for w in written], ignore_index=True).drop_duplicates()
    for key in view.entities:  # compare like with like: the stored keys as the incoming ones are typed
        held[key] = held[key].astype(frame[key].dtype)
    seen = frame[keys].merge(held, on=keys, how="left", indicator=True)["_merge"].to_numpy() == "both"
    return frame[~seen]


def _files(root: Path, pattern: str, view: FeatureView):
    import pandas as pd

    files = sorted(glob.glob(str(root / pattern), recursive=True))
    if not files:
        raise NotFoundError(f"feature view {view.name!r}: no file matches its source {pattern!r} (in {root})")
    frames = []
    for path in files:
        suffix = Path(path).suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise InvalidInputError(f"feature view {view.name!r}: {path} is neither .csv nor .parquet; narrow the "
                                    f"source glob {pattern!r}")
        frames.append(pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path))
    return pd.concat(frames, ignore_index=True), f"{len(files)} file(s) matching {pattern}"


def _sql(source: dict, since, view: FeatureView):
    import pandas as pd

    try:
        import sqlalchemy
    except ImportError:
        raise InvalidInputError("a sql: source reads through SQLAlchemy: pip install 'mlops-nb[features]'") from None
    url = os.path.expandvars(str(source.get("url") or ""))
    if not url or "$" in url:
        raise InvalidInputError(f"feature view {view.name!r}: its sql source needs url: (a SQLAlchemy URL such as "
                                "postgresql+psycopg://user@host/db, or $A_VARIABLE holding one)"
                                + (f"; {source.get('url')} is not set" if "$" in url else ""))
    query = sqlalchemy.text(source["sql"])
    params = {"since": (since if since is not None else pd.Timestamp(0)).to_pydatetime()} \
        if "since" in query._bindparams else {}
    try:
        engine = sqlalchemy.create_engine(url)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ImportError) as exc:
        raise InvalidInputError(f"feature view {view.name!r}: cannot use the database URL: "
                                f"{str(exc).splitlines()[0][:200]}") from None
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(query, conn, params=params)
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:  # pandas wraps the database's error
        cause = exc.__cause__ if isinstance(exc.__cause__, sqlalchemy.exc.SQLAlchemyError) else exc
        reason = str(getattr(cause, "orig", None) or cause).splitlines()[0][:300]
        raise InvalidInputError(f"feature view {view.name!r}: its sql source failed: {reason}") from None
    finally:
        engine.dispose()
    return frame, f"sql on {engine.url.render_as_string(hide_password=True)}"
