"""The prediction service: a Starlette app on uvicorn (``mlops-nb serve churn``).

Starlette rather than FastAPI: the requests are checked against the model's own signature,
known only when the model loads, so FastAPI's declared request models would add a layer
(and pydantic) without checking anything more; Starlette keeps the service small and fast.

    POST /invocations   MLflow's scoring protocol (see mlops_nb.serving.protocol)
    POST /predict       a JSON list of records
    POST /feedback      {"ids": [...], "labels": [...]}: the true labels of earlier predictions
    GET  /ping          200 while the service can answer
    GET  /health        the model, its version and since when it serves

Each answer is ``{"predictions": [...], "ids": [...], "model": {"name", "version"}}``: MLflow's
``predictions`` with one prediction id per row and the version that answered. Every prediction
goes to the prediction log (:mod:`mlops_nb.registry.predictions`), written by a child process
(:mod:`mlops_nb.serving.logwriter`); ``MLOPS_NB_PREDICTION_LOG=off`` turns it off.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlops_nb.registry.predictions import FLUSH_SECONDS, PredictionLog
from mlops_nb.serving.logwriter import ChildProcessLog
from mlops_nb.serving.model import ServedModel
from mlops_nb.serving.protocol import RequestError, check, read_json, read_mlflow, read_records

MAX_BODY = 16 * 1024 * 1024  # bytes; a bigger batch is split by the client
log = logging.getLogger("mlops_nb.serving")


def create_app(home: str | Path | None = None, ref: str | None = None, features: list[str] | None = None,
               features_file: str | Path | None = None) -> Starlette:
    """The service for ``ref`` ("churn" or "churn@staging") in the registry ``home``, filling rows in from the
    feature views named in ``features`` (declared in ``features_file``); without arguments (uvicorn's factory,
    one per worker) they come from $MLOPS_NB_HOME, $MLOPS_NB_SERVE, $MLOPS_NB_FEATURES and
    $MLOPS_NB_FEATURES_FILE."""
    home = home or os.environ["MLOPS_NB_HOME"]
    served = ServedModel(home, ref or os.environ["MLOPS_NB_SERVE"])
    if features is None and os.environ.get("MLOPS_NB_FEATURES"):
        features = os.environ["MLOPS_NB_FEATURES"].split(",")
    served.features = feature_views(features, features_file or os.environ.get("MLOPS_NB_FEATURES_FILE"))
    served.log = None if os.environ.get("MLOPS_NB_PREDICTION_LOG") == "off" else _prediction_log(home, served.name)
    flushing = threading.Event()

    def flush_now_and_then() -> None:
        while not flushing.wait(FLUSH_SECONDS / 10):  # flush_if_due flushes every FLUSH_SECONDS, or when full
            try:
                served.log.flush_if_due()
            except Exception as exc:  # a full disk: say so, keep answering, try again
                log.warning("mlops-nb serve: cannot write the prediction log: %s", exc)

    def start() -> None:
        # The modules, the model, the server: objects that live as long as the service. Under load a full
        # garbage collection runs about once a second; with these frozen it takes ~7 ms instead of ~90.
        gc.freeze()
        served.follow()
        if served.log is not None:
            threading.Thread(target=flush_now_and_then, name="mlops-nb-prediction-log", daemon=True).start()

    def stop() -> None:
        served.stop()
        flushing.set()
        if isinstance(served.log, ChildProcessLog):
            served.log.close()
        elif served.log is not None:
            served.log.flush()

    async def invocations(request: Request) -> Response:
        return await _answer(request, served, lambda body, signature: read_mlflow(body, signature))

    async def predict(request: Request) -> Response:
        return await _answer(request, served, lambda body, signature: read_records(body))

    async def feedback(request: Request) -> Response:
        from mlops_nb.errors import MlopsError
        from mlops_nb.registry.feedback import record_feedback

        try:
            body = await _body(request)
            if not isinstance(body, dict) or set(body) != {"ids", "labels"}:
                raise RequestError(400, 'feedback is {"ids": [...], "labels": [...]}')
            if served.log is not None:
                served.log.flush()  # an id answered a moment ago is known
            result = await run_in_threadpool(record_feedback, served.store, served.name, body["ids"], body["labels"])
        except RequestError as exc:
            return _error(exc.status, str(exc))
        except MlopsError as exc:
            return _error(422, str(exc))
        return _json(result)

    async def ping(request: Request) -> Response:
        return Response("", status_code=200)

    async def health(request: Request) -> Response:
        current = served.current
        return _json({"model": current.name, "alias": served.alias, "version": current.version,
                      "since": current.since})

    app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]),
                            Route("/predict", predict, methods=["POST"]),
                            Route("/feedback", feedback, methods=["POST"]),
                            Route("/ping", ping, methods=["GET"]), Route("/health", health, methods=["GET"])],
                    on_startup=[start], on_shutdown=[stop])
    app.state.served = served
    return app


def feature_views(names: list[str] | None, where: str | Path | None) -> list:
    """The feature views ``names`` (``serve --features``) from the project's features.yaml at ``where``."""
    if not names:
        return []
    from mlops_nb.features.views import find_views, get_view

    views, found = find_views(where)
    return [get_view(views, name.strip(), found) for name in names]


def _prediction_log(home, model: str):
    """The log written by a child process, on another core than the answers; in this process where it may
    have none (a daemonic one)."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return PredictionLog(home, model)
    return ChildProcessLog(home, model)


async def _answer(request: Request, served: ServedModel, read) -> Response:
    started = time.perf_counter()
    current = served.current  # one version for the whole request, whatever the alias does meanwhile
    try:
        body = await _body(request)
        rows = read(body, current.signature)
        entities = None
        if served.features:
            filler = served.filler(current)
            # The keys go to the prediction log only: no frame of them when nothing is logged.
            rows, entities = filler.fill(rows), filler.entities(rows) if served.log is not None else None
        frame = check(rows, current.signature)
        predictions = current.model.predict(frame)
    except RequestError as exc:
        return _error(exc.status, str(exc), exc.fields)
    except (ValueError, TypeError) as exc:  # what the model itself refuses (e.g. an unseen category)
        return _error(422, f"the model cannot score these rows: {str(exc).splitlines()[0][:300]}")
    values = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    ids = new_ids(len(values))
    if served.log is not None:  # written in batches by the log's child: the answer waits neither for the disk
        # nor for the probabilities, which the child asks its model for once per flush, for all its rows at once
        served.log.add(ids=ids, version=current.version, features=frame,
                       predictions=predictions if isinstance(predictions, np.ndarray) else values,
                       predict_proba=getattr(current.model, "predict_proba", None),
                       latency_ms=(time.perf_counter() - started) * 1000, entities=entities)
    return _json({"predictions": values, "ids": ids, "model": {"name": current.name, "version": current.version}})


def new_ids(n: int) -> list[str]:
    """``n`` prediction ids: 128 random bits each, as 32 hex digits (like uuid4().hex, from one read of the OS's
    random source rather than one per row)."""
    digits = os.urandom(16 * n).hex()
    return [digits[i:i + 32] for i in range(0, 32 * n, 32)]


async def _body(request: Request):
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestError(413, f"the body is over {MAX_BODY // 2**20} MiB: send the rows in smaller batches")
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_BODY:
            raise RequestError(413, f"the body is over {MAX_BODY // 2**20} MiB: send the rows in smaller batches")
    return read_json(bytes(data))


def _json(payload, status: int = 200) -> Response:
    # orjson: several times faster than json for long lists of numbers; NaN becomes null (JSON has no NaN)
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


def _error(status: int, message: str, fields: list | None = None) -> Response:
    payload = {"error": message.splitlines()[0] if message else "bad request"}
    if fields:
        payload["fields"] = fields
    return _json(payload, status)
