"""The REST API under /mlops-nb/api/: thin handlers over the library functions the CLI uses.

Every handler goes through Jupyter Server's authentication (a request without the
server's token or login cookie is refused) and its XSRF check on POST. A user
mistake (unknown run, model or alias, a malformed filter) is a 4xx JSON error with
a one-line message; only bugs are 500s.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import tornado
from jupyter_server.base.handlers import APIHandler

from mlops_nb.show import terminal, views
from mlops_nb.errors import FilterSyntaxError, InvalidInputError, MlopsError, NotFoundError
from mlops_nb.registry import datasets, gates, models, runs, search
from mlops_nb.registry import triggers as trigger_store
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import open_store
from mlops_nb.server.discover import find_pipelines, find_registries, registry_label

_REGISTRIES_TTL = 5.0
_registries_seen: dict[Path, tuple[float, list[dict]]] = {}
_STATUS = ((NotFoundError, 404), (FilterSyntaxError, 400), (InvalidInputError, 400), (MlopsError, 409))


class NoRegistryYet(NotFoundError):
    """The registry a request reads does not exist yet."""


class MlopsHandler(APIHandler):
    """Shared: the registry of the server's root, JSON replies, MlopsError -> 4xx."""

    @property
    def root(self) -> Path:
        return Path(self.settings["mlops_nb_root"])

    #: What a listing answers while there is no registry yet (looking must not create one).
    empty: dict | None = None

    def store(self):
        """The registry the request names (``?registry=``, one of :meth:`registries`), else the default one."""
        wanted = self.get_argument("registry", None)
        found = self.registries()
        home = found[0]["home"] if not wanted else next((r["home"] for r in found if r["id"] == wanted), None)
        if home is None:
            raise NotFoundError(f"no registry {wanted!r} under {self.root}; GET /mlops-nb/api/registries lists them")
        if not (home / "registry.db").is_file():
            raise NoRegistryYet(f"no mlops-nb registry in {home.parent} yet: log a run (%%track, mlops.start_run) "
                                "or run a pipeline, and it appears here")
        return open_store(home)

    def registries(self, fresh: bool = False) -> list[dict]:
        """The registries under the root, looked for at most every few seconds (the sidebar polls)."""
        now = time.monotonic()
        cached = _registries_seen.get(self.root)
        if fresh or cached is None or now - cached[0] > _REGISTRIES_TTL:
            cached = _registries_seen[self.root] = (now, find_registries(self.root))
        return cached[1]

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(terminal.jsonable(data), default=str))

    def count(self, name: str, default: int, most: int = 10_000) -> int:
        """A query argument that counts things: a whole number from 1 to ``most``."""
        text = self.get_argument(name, None)
        if text is None:
            return default
        if not (text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= most):
            raise InvalidInputError(f"{name} must be a whole number from 1 to {most:,}, got {text[:40]!r}")
        return int(text)

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except RecursionError:
            raise InvalidInputError("the request body nests too deeply") from None
        except ValueError:
            raise InvalidInputError("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidInputError("the request body must be a JSON object")
        return data

    def _handle(self, action):
        try:
            action()
        except MlopsError as exc:
            self.reply_error(exc)

    def reply_error(self, exc: MlopsError) -> None:
        """A user's mistake as a 4xx JSON error with a one-line message."""
        try:
            raise exc
        except NoRegistryYet as exc:
            if self.empty is not None:
                self.reply({**self.empty, "message": str(exc)})
            else:
                self.reply({"error": str(exc), "kind": "NotFoundError"}, 404)
        except MlopsError as exc:
            status = next(code for kind, code in _STATUS if isinstance(exc, kind))
            message = exc.args[0] if isinstance(exc, FilterSyntaxError) else str(exc)
            self.reply({"error": message.splitlines()[0] if message else type(exc).__name__,
                        "kind": type(exc).__name__}, status)


class RunsHandler(MlopsHandler):
    empty = {"runs": []}

    @tornado.web.authenticated
    def get(self):
        def act():
            args = {k: self.get_argument(k, None) for k in ("experiment", "filter", "order_by")}
            rows = search.search_run_rows(self.store(), args["filter"], order_by=args["order_by"],
                                          experiment=args["experiment"], max_results=self.count("max_results", 100))
            self.reply({"runs": rows})
        self._handle(act)


class RunHandler(MlopsHandler):
    @tornado.web.authenticated
    def get(self, ref):
        def act():
            store = self.store()
            run = runs.get_run(store, ref)
            history: dict[str, list] = {}
            for key, step, value, ts in runs.metric_history(store, run.id):
                history.setdefault(key, []).append({"step": step, "value": value, "timestamp": ts})
            data = terminal.run_dict(run, lineage=datasets.lineage(store, run.id), metric_history=history,
                                   trigger_events=trigger_store.events_of_run(store, run.id))
            self.reply(data)
        self._handle(act)


class ExecutedNotebookHandler(MlopsHandler):
    """The notebook a step executed, as a read-only HTML page (the sidebar shows it in a tab).

    Executed notebooks live in the registry (``.mlops/runs/``), which Jupyter's file
    browser does not open: hidden folders are off limits by default, and should stay so.
    """

    @property
    def content_security_policy(self) -> str:
        # A page, not JSON: its own inline styles must apply (APIHandler would forbid them).
        return "frame-ancestors 'self'; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

    @tornado.web.authenticated
    def get(self, ref):
        def act():
            import nbformat
            from nbconvert import HTMLExporter

            path = runs.executed_notebook(self.store(), ref)
            # Sanitised as well as script-free (the CSP): a notebook's markdown could otherwise carry a
            # <meta http-equiv="refresh"> that sends the reader elsewhere.
            exporter = HTMLExporter(template_name="lab", exclude_anchor_links=True, sanitize_html=True)
            try:
                html, _ = exporter.from_filename(str(path))
            except (ValueError, nbformat.reader.NotJSONError, nbformat.ValidationError) as exc:
                raise InvalidInputError(f"the executed notebook of run {ref} cannot be read: "
                                        f"{str(exc).splitlines()[0][:200]}") from None
            self.finish(html, set_content_type="text/html; charset=UTF-8")
        self._handle(act)


class ModelsHandler(MlopsHandler):
    empty = {"models": []}

    @tornado.web.authenticated
    def get(self):
        self._handle(lambda: self.reply({"models": models.list_models(self.store())}))


class ModelHandler(MlopsHandler):
    @tornado.web.authenticated
    def get(self, name):
        def act():
            store = self.store()
            versions = []
            found, metrics = models.versions_with_metrics(store, name)
            for version in found:
                data = terminal.version_dict(version, metrics[version.version])
                decision = gates.latest_decision(store, name, version.version)
                data["gate"] = None if decision is None else {k: decision[k] for k in (
                    "id", "passed", "baseline_version", "results", "override_reason", "created_at")}
                versions.append(data)
            self.reply({"name": name, "versions": versions, "alias_history": models.alias_history(store, name)})
        self._handle(act)


class AliasHandler(MlopsHandler):
    @tornado.web.authenticated
    def post(self, name, alias):
        def act():
            data = self.body()
            version = data.get("version")
            if not isinstance(version, int) or isinstance(version, bool):
                raise InvalidInputError(f"the body must name the version as a number, e.g. {{\"version\": 3}}, "
                                        f"got {version!r}")
            override, reason = _text_field(data, "override"), _text_field(data, "reason")
            store = self.store()
            before = models.alias_version_or_none(store, name, alias)
            result = gates.promote(store, name, version, alias, override=override,
                                   reason=reason or "promoted from JupyterLab", require_gate=False)
            self.reply({"name": name, "alias": alias, "version": result.version, "previous": before})
        self._handle(act)


class RollbackHandler(MlopsHandler):
    @tornado.web.authenticated
    def post(self, name, alias):
        def act():
            data = self.body()
            reason, override = _text_field(data, "reason"), _text_field(data, "override")
            store = self.store()
            before = models.alias_version(store, name, alias)
            result, decision = gates.rollback(store, name, alias, reason=reason or "rolled back from JupyterLab",
                                              override=override)
            self.reply(views.AliasChange(name, alias, result.version, before, gate=decision,
                                         rolled_back=True).to_json())
        self._handle(act)


class RegistriesHandler(MlopsHandler):
    @tornado.web.authenticated
    def get(self):
        def act():
            self.reply({"registries": [{"id": r["id"], "home": str(r["home"]),
                                        "exists": (r["home"] / "registry.db").is_file()}
                                       for r in self.registries(fresh=True)]})
        self._handle(act)


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
                if not (home / "registry.db").is_file():
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


def _text_field(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{key} is text, got {json.dumps(value)[:60]}")
    return value


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


def handlers(base: str) -> list[tuple]:
    api = base.rstrip("/") + "/mlops-nb/api"
    name = r"([^/]+)"
    return [
        (f"{api}/registries", RegistriesHandler),
        (f"{api}/runs", RunsHandler),
        (f"{api}/runs/{name}", RunHandler),
        (f"{api}/runs/{name}/notebook", ExecutedNotebookHandler),
        (f"{api}/models", ModelsHandler),
        (f"{api}/models/{name}", ModelHandler),
        (f"{api}/models/{name}/aliases/{name}", AliasHandler),
        (f"{api}/models/{name}/aliases/{name}/rollback", RollbackHandler),
        (f"{api}/pipelines", PipelinesHandler),
        (f"{api}/pipelines/{name}/runs", PipelineRunsHandler),
        (f"{api}/triggers", TriggersHandler),
        (f"{api}/triggers/events", TriggerEventsHandler),
    ]
