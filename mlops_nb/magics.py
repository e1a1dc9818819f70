"""The IPython face: ``%%track`` runs a cell as a run; ``%mlops`` speaks the CLI's commands.

    %load_ext mlops_nb
    %mlops experiment churn

    %%track fit-rf --params n_estimators,max_depth --tag team=ml
    model = RandomForestClassifier(n_estimators=n_estimators).fit(X_train, y_train)
    mlops.log_metric("accuracy", model.score(X_test, y_test))
"""

from __future__ import annotations

import ast
import re
import shlex
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from mlops_nb import tracking
from mlops_nb.tracking import autolog, boosting
from mlops_nb.errors import MlopsError
from mlops_nb.pipeline.params import notebook_params
from mlops_nb.registry import runs as run_store
from mlops_nb.registry.values import encode_param


class RunSummary:
    """What a ``%%track`` cell shows below its output."""

    def __init__(self, run):
        self.run = run

    def _repr_html_(self) -> str:
        from mlops_nb.show.html import run_summary_html

        return run_summary_html(self.run)

    def __repr__(self) -> str:
        from mlops_nb.show.terminal import fmt_duration, fmt_plain
        from mlops_nb.show.html import split_model_params

        run = self.run
        own, models = split_model_params(run)
        parts = [f"run {run.name} ({run.id[:8]}) {run.status} in {fmt_duration(run.start_time, run.end_time)}"]
        if own:
            parts.append("params " + ", ".join(f"{k}={fmt_plain(v)}" for k, v in list(own.items())[:8]))
        if run.metrics:
            parts.append("metrics " + ", ".join(f"{k}={fmt_plain(v)}" for k, v in run.metrics.items()))
        if models:
            parts.append("models " + ", ".join(f"{m} ({n} estimator params)" if n else m for m, n in models.items()))
        return " · ".join(parts)


@magics_class
class MlopsMagics(Magics):

    @magic_arguments()
    @argument("name", nargs="?", help="Run name (default: a generated one).")
    @argument("-e", "--experiment", help="Experiment (default: the session's, see %%mlops experiment).")
    @argument("-p", "--params", default="", help="Comma-separated variable names to log as params.")
    @argument("-t", "--tag", action="append", default=[], metavar="KEY=VALUE", help="A tag (repeatable).")
    @argument("--no-autolog", action="store_true",
              help="Do not log fitted scikit-learn estimators, XGBoost or LightGBM training.")
    @argument("--figures", action="store_true",
              help="Log the figures the cell draws (matplotlib) or ends with (matplotlib or plotly).")
    @cell_magic
    def track(self, line: str, cell: str):
        """Run the cell as one run: params, metrics, fitted models and the cell's source are logged.

        Params are the variables --params names or, without --params, the values of
        the notebook's cell tagged `parameters` (as papermill injected them). An exception marks the run failed and is
        re-raised unchanged.
        """
        __tracebackhide__ = True  # noqa: F841 - IPython leaves this frame out of tracebacks
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot split the %%track line: {exc}") from None
        args = self.track.parser.parse_args(words)
        namespace = self.shell.user_ns
        tags = dict(_split_tag(t) for t in args.tag)
        explicit = [n.strip() for n in args.params.split(",") if n.strip()]
        unknown = [n for n in explicit if not n.isidentifier()]
        if unknown:
            raise UsageError(f"--params takes variable names separated by commas, got {', '.join(unknown)}")
        if explicit:  # the user said which values matter for this cell
            params = {n: namespace[n] for n in explicit if n in namespace}
        else:
            params = notebook_params(namespace, self.shell.history_manager.input_hist_raw)
            params = {k: v for k, v in params.items() if _storable(k, v)}
        bad = [n for n in explicit if n in params and not _storable(n, params[n])]
        if bad:
            raise UsageError(f"--params {bad[0]}: its value ({type(params[bad[0]]).__name__}) cannot be stored as a "
                             "param; log numbers, text, booleans or lists/dicts of them")
        try:
            run = tracking.start_run(experiment=args.experiment, name=args.name, params=params, tags=tags,
                                     source=cell)
        except MlopsError as exc:
            raise UsageError(str(exc)) from None
        before = autolog.snapshot(namespace) if not args.no_autolog else {}
        figures_before = _open_figures() if args.figures else {}
        try:
            with boosting.record_training(enabled=not args.no_autolog) as trained:  # xgboost/lightgbm.train
                result = self._execute(cell)
            self._log_after(run, explicit, params, before if not args.no_autolog else None, trained)
            if args.figures:
                _log_figures(run, figures_before, result)
        except BaseException as exc:
            run.__exit__(type(exc), exc, exc.__traceback__)
            display(RunSummary(run_store.get_run(run.store, run.id)))
            raise
        run.end("finished")
        display(RunSummary(run_store.get_run(run.store, run.id)))
        return result

    def _log_after(self, run, explicit: list[str], params: dict, before: dict | None,
                   trained: list[boosting.TrainCall]) -> None:
        """Params the cell defined itself, the estimators it fitted and the boosters it trained."""
        namespace = self.shell.user_ns
        missing = [n for n in explicit if n not in namespace]
        if missing:
            raise UsageError(f"--params names {', '.join(missing)}, which neither existed before the cell nor "
                             "were defined by it")
        try:
            for name in explicit:
                if name not in params:
                    run.log_param(name, namespace[name])
            if before is not None:
                autolog.log_fitted(run, before, namespace, trained)
        except MlopsError as exc:
            raise UsageError(str(exc)) from None

    def _execute(self, cell: str):
        """Run ``cell`` in the user namespace as IPython would, returning its last expression."""
        __tracebackhide__ = True  # noqa: F841
        shell = self.shell
        source = shell.transform_cell(cell)
        tree = shell.transform_ast(shell.compile.ast_parse(source))
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        filename = shell.compile.cache(source, shell.execution_count, raw_code=cell)
        exec(shell.compile(tree, filename, "exec"), shell.user_ns)
        if last is not None:
            return eval(shell.compile(last, filename, "eval"), shell.user_ns)
        return None

    @line_magic
    def mlops(self, line: str):
        """The mlops-nb commands in a notebook: `%mlops runs ls -f "metrics.acc > 0.9"`,
        `%mlops models show churn`, `%mlops experiment NAME`; `%mlops --help` lists them."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot split the command line: {exc}") from None
        if words[:1] == ["experiment"]:
            return self._experiment(words[1:])
        run_cli_in_notebook(words)

    def _experiment(self, words: list[str]) -> None:
        if len(words) != 1:
            raise UsageError("usage: %mlops experiment NAME")
        try:
            tracking.set_experiment(words[0])
        except MlopsError as exc:
            raise UsageError(str(exc)) from None
        print(f"runs now go to experiment {words[0]!r}")


def _open_figures() -> dict:
    """The matplotlib figures open now, by number (none when the notebook never imported pyplot)."""
    if "matplotlib.pyplot" not in sys.modules:
        return {}
    from matplotlib._pylab_helpers import Gcf  # pyplot's own registry: plt.figure(n) would make n current

    return {manager.num: manager.canvas.figure for manager in Gcf.get_all_fig_managers()}


def _log_figures(run, before: dict, result) -> None:
    """Log the figures the cell opened (or drew again) and the figure it ended with, each under its title."""
    figures = [f for n, f in _open_figures().items() if before.get(n) is not f or f.stale]
    if result is not None and (type(result).__module__.startswith("plotly") or hasattr(result, "savefig")) \
            and not any(result is f for f in figures):
        figures.append(result)
    used: set[str] = set()
    for number, figure in enumerate(figures, start=1):
        name = _figure_name(figure) or f"figure-{number}"
        while name in used:
            name += f"-{number}"
        used.add(name)
        run.log_figure(figure, name)


def _figure_name(figure) -> str:
    """A file name from a figure's label or its first title."""
    if hasattr(figure, "get_label"):  # matplotlib
        title = figure.get_label() or next((ax.get_title() for ax in figure.axes if ax.get_title()), "")
    else:  # plotly
        title = getattr(getattr(figure.layout, "title", None), "text", None) or ""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:80]


def _split_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--tag takes KEY=VALUE, got {text!r}")
    return key, value


def _storable(key: str, value) -> bool:
    try:
        encode_param(key, value)
        return True
    except MlopsError:
        return False


def run_cli_in_notebook(words: list[str]) -> None:
    """Run a CLI command with its result displayed in the notebook; mistakes are one line."""
    import click

    from mlops_nb.cli import cli

    tracking.flush_active()
    obj = {"show": show_in_notebook}
    if tracking.configured_home() is not None:
        obj["home"] = tracking.configured_home()
    try:
        cli.main(args=words, prog_name="%mlops", standalone_mode=False, obj=obj)
    except click.exceptions.Exit:
        pass
    except click.Abort:
        print("Aborted.")
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `%mlops`, `%mlops runs`: the help, not an error
            print(exc.format_message())
            return
        where = exc.ctx.command_path if exc.ctx is not None else "%mlops"
        raise UsageError(f"{exc.format_message()} (see {where} --help)") from None
    except click.ClickException as exc:
        raise UsageError(exc.format_message()) from None


def show_in_notebook(view) -> None:
    """A live widget where a kernel can talk to the front end, static HTML otherwise."""
    from IPython import get_ipython

    from mlops_nb.widgets import widget_for

    shell = get_ipython()
    if getattr(shell, "kernel", None) is not None:
        widget = widget_for(view)
        if widget is not None:
            display(widget)
            return
    display(view)


def load_ipython_extension(ipython) -> None:
    from mlops_nb.show.notebook import register

    ipython.register_magics(MlopsMagics)
    register(ipython)

