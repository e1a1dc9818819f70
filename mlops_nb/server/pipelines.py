"""The REST API's pipelines and triggers: list them, start a run, read trigger state and events."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import tornado

from mlops_nb.errors import InvalidInputError, MlopsError, NotFoundError
from mlops_nb.registry import runs
from mlops_nb.registry import triggers as trigger_store
from mlops_nb.registry.home import find_home, has_registry
from mlops_nb.registry.store import open_store
from mlops_nb.server.discover import find_pipelines, registry_label
from mlops_nb.server.handlers import MlopsHandler


class PipelinesHandler(MlopsHandler):
    @tornado.web.authenticated
    def get(self):
        def act():
            from mlops_nb.pipeline.spec import load_pipeline

            out = []
            for path in find_pipelines(self.root):
                entry = {"path": str(path.relative_to(self.root))}
                try:
                    spec = load_pipeline(path)
                except MlopsError as exc:
                    out.append({**entry, "error": str(exc)})
                    continue
                home = find_home(start=path.parent)  # where its runs go, as `mlops-nb run` there would
                entry["registry"] = registry_label(self.root, home)
                if not has_registry(home):
                    out.append({**entry, "name": spec.name, "steps": [s.name for s in spec.steps],
                                "triggers": [t.describe() for t in spec.triggers], "runs": []})
                    continue
                runs_out = runs.recent_pipeline_runs(open_store(home), spec.name, limit=5)
                for run in runs_out:  # each step's executed notebook: GET runs/<run_id>/notebook
                    run["steps"] = [{"run_id": s["run_id"], "step": s["step"],
                                     "state": _step_state(s["status"], s["cached_from"])} for s in run["steps"]]
                out.append({**entry, "name": spec.name, "steps": [s.name for s in spec.steps],
                            "triggers": [t.describe() for t in spec.triggers], "runs": runs_out})
            self.reply({"pipelines": out})
        self._handle(act)


def _step_state(status: str, cached_from: str | None) -> str:
    if status == "finished":
        return "cached" if cached_from else "ran"
    return status


class PipelineRunsHandler(MlopsHandler):
    """POST starts a run in a thread and answers 202 at once: with its run id when the run began within
    ``START_WAIT`` seconds, else ``"status": "starting"`` (the registry is busy; the run begins when it is
    free). Nothing here waits on the server's event loop."""

    START_WAIT = 2.0

    @tornado.web.authenticated
    async def post(self, name):
        from tornado.ioloop import IOLoop

        from mlops_nb.pipeline.params import parse_overrides, plan_params
        from mlops_nb.pipeline.runner import RunOptions, run_pipeline

        loop = IOLoop.current()
        try:
            spec, params, force = self._request(name)
            # Reading the steps' notebooks (and papermill, the first time) is work: off the event loop.
            planned = await loop.run_in_executor(None, plan_params, spec, parse_overrides(params))
        except MlopsError as exc:  # a bad param is a 400 now, not a failed run later
            self.reply_error(exc)
            return
        started = threading.Event()
        holder: dict = {}

        def on_start(run_id):
            holder["run_id"] = run_id
            started.set()

        options = RunOptions(params=tuple(params), force=force, tags={"started_from": "jupyterlab"},
                             on_start=on_start, handle_sigterm=False)

        def work():
            try:
                run_pipeline(spec, options, planned=planned)
            except BaseException as exc:  # reported to the request below while it waits
                holder["error"] = exc
                started.set()

        threading.Thread(target=work, name=f"mlops-run-{name}", daemon=True).start()
        await loop.run_in_executor(None, started.wait, self.START_WAIT)
        if isinstance(holder.get("error"), MlopsError):
            self.reply_error(holder["error"])
        elif "error" in holder:
            raise holder["error"]
        elif "run_id" in holder:
            self.reply({"pipeline": name, "run_id": holder["run_id"], "status": "running"}, 202)
        else:
            self.reply({"pipeline": name, "run_id": None, "status": "starting",
                        "message": "the registry is busy; the run starts as soon as it is free"}, 202)

    def _request(self, name: str):
        """The pipeline named in the URL and the body's params and force flag, checked."""
        from mlops_nb.pipeline.spec import load_pipeline

        data = self.body()
        unknown = sorted(set(data) - {"params", "force"})
        if unknown:
            raise InvalidInputError(f"unknown field(s) {', '.join(unknown)}; a run takes params (a list of "
                                    "\"NAME=VALUE\" strings) and force (true or false)")
        params = data.get("params") or []
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise InvalidInputError(f"params is a list of \"NAME=VALUE\" or \"STEP.NAME=VALUE\" strings, "
                                    f"e.g. [\"C=0.5\"], got {json.dumps(params)[:100]}")
        force = data.get("force", False)
        if not isinstance(force, bool):
            raise InvalidInputError(f"force is true or false, got {json.dumps(force)[:40]}")
        path = next((p for p in find_pipelines(self.root) if _name_of(p) == name), None)
        if path is None:
            raise NotFoundError(f"no pipeline named {name!r} under {self.root}")
        return load_pipeline(path), params, force


def _name_of(path: Path) -> str | None:
    from mlops_nb.pipeline.spec import load_pipeline

    try:
        return load_pipeline(path).name
    except MlopsError:
        return None


class TriggersHandler(MlopsHandler):
    @tornado.web.authenticated
    def get(self):
        def act():
            from mlops_nb.triggers.check import trigger_status

            rows = []
            for path in find_pipelines(self.root):
                try:
                    rows.extend(trigger_status(path))
                except MlopsError as exc:
                    rows.append({"pipeline": str(path.relative_to(self.root)), "error": str(exc)})
            self.reply({"triggers": rows})
        self._handle(act)


class TriggerEventsHandler(MlopsHandler):
    empty = {"events": []}

    @tornado.web.authenticated
    def get(self):
        def act():
            self.reply({"events": trigger_store.history(self.store(), self.get_argument("pipeline", None),
                                                        self.count("max_results", 50))})
        self._handle(act)
