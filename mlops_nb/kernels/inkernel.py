"""Code that runs inside a pooled kernel: preload modules, then prepare and reset runs.

Imported by the pool with silent executes, so nothing here shows in a notebook or
counts as an execution. Keep it light: it is imported in every pooled kernel.

What a reset undoes: the user namespace (IPython's reset, execution count back to 1),
the working directory, environment variables, ``sys.path`` and ``sys.argv``, the
runs mlops-nb had attached, and open matplotlib figures. What it cannot undo: state
kept inside imported modules (a module-level cache, a monkey-patch, logging or
warnings configuration, a random seed set through a library). Steps that depend on
a pristine process use ``isolation: kernel``.
"""

from __future__ import annotations

import importlib
import os
import sys

_baseline: dict = {}


def init(preload: list[str]) -> list[str]:
    """Import ``preload`` modules (failures are skipped) and remember the pristine process state."""
    failed = []
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:  # a notebook may name modules this environment lacks; the run will say so
            failed.append(name)
    _baseline.update(cwd=os.getcwd(), environ=dict(os.environ), path=list(sys.path), argv=list(sys.argv))
    # The preloaded modules' objects live as long as the kernel: keep them out of every
    # later garbage collection (IPython's reset runs one), which then only scans the run's objects.
    import gc

    gc.collect()
    gc.freeze()
    return failed


def prepare(cwd: str, environ: dict[str, str]) -> None:
    """Give the next run the caller's working directory and environment."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)


def reset() -> None:
    """Return the kernel to the state ``init`` left it in."""
    _forget_runs()
    figures = sys.modules.get("matplotlib.pyplot")
    if figures is not None:
        figures.close("all")
    if _baseline:
        os.chdir(_baseline["cwd"])
        os.environ.clear()
        os.environ.update(_baseline["environ"])
        sys.path[:] = _baseline["path"]
        sys.argv[:] = _baseline["argv"]
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.reset(new_session=True)  # clears the namespace (and collects garbage); execution count 1


def _forget_runs() -> None:
    if "mlops_nb.tracking" not in sys.modules:
        return  # the last step never logged anything: nothing to forget, and nothing to import
    from mlops_nb.tracking import forget_process_state

    forget_process_state()
