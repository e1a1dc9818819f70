"""Executing one step's notebook: papermill's parameter injection, our context cell, our
engine, and a failure report a person can read (the cell, its source, the error)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

CONTEXT_TAG = "mlops-nb-context"


@dataclass
class StepFailure:
    step: str
    message: str
    cell_index: int | None = None
    exec_count: int | None = None
    source: str | None = None
    ename: str | None = None
    evalue: str | None = None
    notebook: Path | None = None
    interrupted: bool = False

    def summary(self) -> str:
        """One line: what failed, for the run's error field."""
        if self.ename:
            return f"{self.ename}: {self.evalue} (step {self.step!r}, cell {self.exec_count or self.cell_index})"
        return self.message

    def describe(self) -> str:
        """Several lines for a terminal: the step, the failing cell's source, the error."""
        lines = [self.message]
        if self.source:
            lines.append(f"  in cell [{self.exec_count}]:" if self.exec_count else "  in the cell:")
            lines.extend("    " + line for line in self.source.strip().splitlines()[-12:])
        if self.ename:
            lines.append(f"  {self.ename}: {self.evalue}")
        if self.notebook:
            lines.append(f"  executed notebook: {self.notebook}")
        return "\n".join(lines)


def prepare_notebook(step, params: dict, run_id: str, home: Path, pipeline_run: str, inputs_scope: str = "pipeline",
                     registry: str | None = None):
    """The step's notebook with papermill's injected-parameters cell and our context cell after it (which names
    a PostgreSQL ``registry`` with its password masked: the kernel finds that in its environment)."""
    from mlops_nb.registry.home import mask_url

    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(step.notebook))
    nb = parameterize_notebook(nb, params, kernel_name=step.kernel)
    source = (f"# mlops-nb: step {step.name!r} of pipeline run {pipeline_run[:8]}; metrics and outputs go to "
              f"run {run_id[:8]}\nimport mlops_nb as _mlops_nb\n"
              f"_mlops_nb.attach_step(run_id={run_id!r}, home={str(home)!r}, pipeline_run={pipeline_run!r}, "
              f"step={step.name!r}{', inputs=' + repr(inputs_scope) if inputs_scope != 'pipeline' else ''}"
              f"{', registry=' + repr(mask_url(registry)) if registry else ''})")
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [CONTEXT_TAG], "papermill": {}})
    injected = next((i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])), -1)
    nb.cells.insert(injected + 1, cell)
    return nb


def kernel_name_of(step, nb=None) -> str:
    if step.kernel:
        return step.kernel
    if nb is None:
        import json

        nb = json.loads(step.notebook.read_text(encoding="utf-8"))
    return nb.get("metadata", {}).get("kernelspec", {}).get("name") or "python3"


def execute_step(step, params: dict, *, run_id: str, pipeline_run: str, home: Path, cwd: Path, output: Path,
                 watch, pool=None, inputs_scope: str = "pipeline", registry: str | None = None,
                 environ: dict[str, str] | None = None) -> StepFailure | None:
    """Run the step's notebook once, in the folder ``cwd``, and save it to ``output``; None on success.

    ``pool`` is a kernel pool (warm kernels) or None for a fresh kernel; ``watch`` lets the
    runner follow the cells and stop the kernel. The kernel is told its folder: this process's
    working directory is left alone, so pipelines in one process (a server, a notebook) never mix.
    ``environ`` is the kernel's environment (default: this process's)."""
    import os

    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import prepare_notebook_metadata, raise_for_execution_errors, remove_error_markers
    from papermill.iorw import write_ipynb

    from mlops_nb.kernels.launch import kernel_problem
    from mlops_nb.pipeline.engine import MlopsEngine
    from mlops_nb.pipeline.watch import StepTimeout

    nb = prepare_notebook(step, params, run_id, home, pipeline_run, inputs_scope, registry)
    nb = remove_error_markers(prepare_notebook_metadata(nb, str(step.notebook), str(output)))
    kernel_name = kernel_name_of(step, nb)
    kernel = log = None
    if pool is not None:
        from mlops_nb.kernels.lease import LeasedKernelManager
        from mlops_nb.kernels.pool import KernelPoolError

        try:
            kernel = pool.acquire(isolation=step.isolation)
            pool.prepare(kernel, cwd=str(cwd), environ=dict(os.environ if environ is None else environ))
        except (KernelPoolError, NoSuchKernel) as exc:
            if kernel is not None:
                pool.release(kernel, healthy=False)
            return StepFailure(step.name, f"step {step.name!r}: {kernel_problem(exc, kernel_name)}")
        engine_args = {"leased_km": LeasedKernelManager(kernel.connection_info, kernel.pid, kernel_name)}
        watch.kill = lambda: pool.kill(kernel)
    else:
        log = open(output.with_suffix(".kernel.log"), "ab")
        engine_args = {"kernel_log": log, "mlops_cwd": str(cwd), "mlops_env": environ}
    healthy = False
    try:
        nb = MlopsEngine.execute_notebook(nb, kernel_name, output_path=str(output), progress_bar=False,
                                          mlops_watch=watch, **engine_args)
        healthy = True
        raise_for_execution_errors(nb, str(output))
        write_ipynb(nb, str(output))
        return None
    except PapermillExecutionError as exc:
        if watch.stopped.is_set():
            return StepFailure(step.name, f"step {step.name!r} was interrupted", interrupted=True, notebook=output)
        return StepFailure(step.name, f"step {step.name!r} failed", cell_index=exc.cell_index,
                           exec_count=exc.exec_count, source=exc.source, ename=exc.ename, evalue=exc.evalue,
                           notebook=output)
    except NoSuchKernel as exc:
        return StepFailure(step.name, f"step {step.name!r}: {kernel_problem(exc, kernel_name)}")
    except (StepTimeout, CellTimeoutError) as exc:
        # Which limit ended it: the step's whole deadline, or one cell's own limit.
        by_step = step.cell_timeout is None or isinstance(exc, StepTimeout) or (
            step.timeout is not None and watch.deadline is not None and time.monotonic() >= watch.deadline - 1)
        limit = f"{step.timeout:g} s for the step" if by_step else f"{step.cell_timeout:g} s per cell"
        return StepFailure(step.name, f"step {step.name!r} timed out ({limit}): {str(exc).splitlines()[0][:200]}",
                           source=watch.cell_source, ename="Timeout", evalue=f"stopped after {limit}",
                           notebook=output)
    except (KeyboardInterrupt, DeadKernelError, RuntimeError) as exc:
        if watch.stopped.is_set() or isinstance(exc, KeyboardInterrupt):
            return StepFailure(step.name, f"step {step.name!r} was interrupted", interrupted=True, notebook=output)
        where = f"pooled kernel pid {kernel.pid}" if kernel is not None else "kernel"
        hint = "out of memory? a crash in native code?" if kernel is not None else \
            f"see {output.with_suffix('.kernel.log')}"
        return StepFailure(step.name, f"step {step.name!r}: the {where} died while running a cell ({hint})",
                           source=watch.cell_source, ename="DeadKernelError", evalue=f"the {where} died",
                           notebook=output)
    finally:
        if log is not None:
            log.close()
        if kernel is not None:
            pool.release(kernel, healthy=healthy, isolation=step.isolation)
