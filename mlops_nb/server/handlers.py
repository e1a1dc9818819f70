"""The REST API under /mlops-nb/api/: thin handlers over the library functions the CLI uses.

Here: what every handler shares, runs, models and registries; pipelines and triggers are in
:mod:`mlops_nb.server.pipelines`, a served model's monitoring in :mod:`mlops_nb.server.monitoring`, feature
views in :mod:`mlops_nb.server.features`.

Every handler goes through Jupyter Server's authentication (a request without the
server's token or login cookie is refused) and its XSRF check on POST. A user
mistake (unknown run, model or alias, a malformed filter) is a 4xx JSON error with
a one-line message; only bugs are 500s.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import tornado
from jupyter_server.base.handlers import APIHandler

from mlops_nb.errors import FilterSyntaxError, InvalidInputError, MlopsError, NotFoundError
from mlops_nb.registry import datasets, gates, models, runs, search
from mlops_nb.registry import triggers as trigger_store
from mlops_nb.registry.home import has_registry
from mlops_nb.registry.store import open_store
from mlops_nb.server.discover import find_registries
from mlops_nb.show import terminal, views

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
        if not has_registry(home):
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
                data["datasets"] = [{k: d[k] for k in ("name", "fingerprint", "role")}
                                    for d in datasets.lineage(store, version.run_id)["datasets"]]
                data["run_name"] = runs.get_run(store, version.run_id).name
                decision = gates.latest_decision(store, name, version.version)
                data["gate"] = None if decision is None else {k: decision[k] for k in (
                    "id", "passed", "baseline_version", "results", "override_reason", "created_at")}
                fair = ((decision or {}).get("card") or {}).get("fairness")
                if data["gate"] is not None and fair:  # the gate's fairness figures, beside the version
                    data["gate"]["fairness"] = {"column": fair["column"], **{
                        k: v for k, v in fair["candidate"].items() if k != "groups"}}
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
                                        "exists": has_registry(r["home"])}
                                       for r in self.registries(fresh=True)]})
        self._handle(act)


def _text_field(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{key} is text, got {json.dumps(value)[:60]}")
    return value


def handlers(base: str) -> list[tuple]:
    from mlops_nb.server.artifacts import ArtifactHandler
    from mlops_nb.server.features import FeatureHandler, FeaturesHandler
    from mlops_nb.server.monitoring import MonitorHandler
    from mlops_nb.server.pipelines import (PipelineRunsHandler, PipelinesHandler, TriggerEventsHandler,
                                           TriggersHandler)

    api = base.rstrip("/") + "/mlops-nb/api"
    name = r"([^/]+)"
    return [
        (f"{api}/registries", RegistriesHandler),
        (f"{api}/runs", RunsHandler),
        (f"{api}/runs/{name}", RunHandler),
        (f"{api}/runs/{name}/notebook", ExecutedNotebookHandler),
        (f"{api}/runs/{name}/artifacts/(.+)", ArtifactHandler),
        (f"{api}/models", ModelsHandler),
        (f"{api}/models/{name}", ModelHandler),
        (f"{api}/models/{name}/monitor", MonitorHandler),
        (f"{api}/models/{name}/aliases/{name}", AliasHandler),
        (f"{api}/models/{name}/aliases/{name}/rollback", RollbackHandler),
        (f"{api}/pipelines", PipelinesHandler),
        (f"{api}/pipelines/{name}/runs", PipelineRunsHandler),
        (f"{api}/triggers", TriggersHandler),
        (f"{api}/triggers/events", TriggerEventsHandler),
        (f"{api}/features", FeaturesHandler),
        (f"{api}/features/{name}", FeatureHandler),
    ]
