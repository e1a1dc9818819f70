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
goes to the prediction log (:mod:`mlops_nb.registry.predictions`; ``MLOPS_NB_PREDICTION_LOG=off``
turns it off).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlops_nb.registry.predictions import FLUSH_SECONDS, PredictionLog
from mlops_nb.serving.model import ServedModel
from mlops_nb.serving.protocol import RequestError, check, read_mlflow, read_records

MAX_BODY = 16 * 1024 * 1024  # bytes; a bigger batch is split by the client
log = logging.getLogger("mlops_nb.serving")


def create_app(home: str | Path | None = None, ref: str | None = None) -> Starlette:
    """The service for ``ref`` ("churn" or "churn@staging") in the registry ``home``; without arguments
    (uvicorn's factory, one per worker) they come from $MLOPS_NB_HOME and $MLOPS_NB_SERVE."""
    home = home or os.environ["MLOPS_NB_HOME"]
    served = ServedModel(home, ref or os.environ["MLOPS_NB_SERVE"])
    served.log = None if os.environ.get("MLOPS_NB_PREDICTION_LOG") == "off" else PredictionLog(home, served.name)
    flushing = threading.Event()

    def flush_now_and_then() -> None:
        while not flushing.wait(FLUSH_SECONDS / 2):
            try:
                served.log.flush_if_due()
            except Exception as exc:  # a full disk: say so, keep answering, try again
                log.warning("mlops-nb serve: cannot write the prediction log: %s", exc)

    def start() -> None:
        served.follow()
        if served.log is not None:
            threading.Thread(target=flush_now_and_then, name="mlops-nb-prediction-log", daemon=True).start()

    def stop() -> None:
        served.stop()
        flushing.set()
        if served.log is not None:
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
        return JSONResponse(result)

    async def ping(request: Request) -> Response:
        return Response("", status_code=200)

    async def health(request: Request) -> Response:
        current = served.current
        return JSONResponse({"model": current.name, "alias": served.alias, "version": current.version,
                             "since": current.since})

    app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]),
                            Route("/predict", predict, methods=["POST"]),
                            Route("/feedback", feedback, methods=["POST"]),
                            Route("/ping", ping, methods=["GET"]), Route("/health", health, methods=["GET"])],
                    on_startup=[start], on_shutdown=[stop])
    app.state.served = served
    return app


async def _answer(request: Request, served: ServedModel, read) -> Response:
    started = time.perf_counter()
    current = served.current  # one version for the whole request, whatever the alias does meanwhile
    try:
        body = await _body(request)
        frame = check(read(body, current.signature), current.signature)
        predictions = current.model.predict(frame)
        probabilities = current.model.predict_proba(frame).tolist() if hasattr(current.model, "predict_proba") \
            and served.log is not None else None
    except RequestError as exc:
        return _error(exc.status, str(exc), exc.fields)
    except (ValueError, TypeError) as exc:  # what the model itself refuses (e.g. an unseen category)
        return _error(422, f"the model cannot score these rows: {str(exc).splitlines()[0][:300]}")
    values = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    ids = [uuid.uuid4().hex for _ in values]
    if served.log is not None:  # written in batches by the flusher: the answer does not wait for the disk
        served.log.add(ids=ids, version=current.version, features=frame, predictions=values,
                       probabilities=probabilities, latency_ms=(time.perf_counter() - started) * 1000)
    return JSONResponse({"predictions": values, "ids": ids, "model": {"name": current.name,
                                                                     "version": current.version}})


async def _body(request: Request):
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestError(413, f"the body is over {MAX_BODY // 2**20} MiB: send the rows in smaller batches")
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_BODY:
            raise RequestError(413, f"the body is over {MAX_BODY // 2**20} MiB: send the rows in smaller batches")
    try:
        return json.loads(data or b"null")
    except RecursionError:
        raise RequestError(400, "the body nests too deeply") from None
    except ValueError:
        raise RequestError(400, "the body is not JSON (send Content-Type: application/json)") from None


def _error(status: int, message: str, fields: list | None = None) -> JSONResponse:
    payload = {"error": message.splitlines()[0] if message else "bad request"}
    if fields:
        payload["fields"] = fields
    return JSONResponse(payload, status_code=status)
