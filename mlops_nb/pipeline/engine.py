"""A papermill engine that the runner can watch: cell progress, a deadline for the whole
step, and a handle to stop the kernel on Ctrl-C/SIGTERM.

papermill finds it as ``mlops-nb`` through its ``papermill.engine`` entry-point group
(see ``papermill_plugin``), so ``papermill --engine mlops-nb`` works too and takes its
kernel from the project's kernel daemon when one runs.
"""

from __future__ import annotations

import logging
import math

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine
from papermill.utils import remove_args

from mlops_nb.pipeline.watch import Watch

ENGINE_NAME = "mlops-nb"


class _AbandonedOutputPoll(logging.Filter):
    """nbclient leaves a cell's output poll pending when the cell times out; asyncio then reports the task
    as destroyed when it is collected. The step's failure already says what happened, so that is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Task was destroyed but it is pending" in message and "_async_poll_output_msg" in message)


logging.getLogger("asyncio").addFilter(_AbandonedOutputPoll())


class MlopsEngine(NBClientEngine):
    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                 start_timeout=60, execution_timeout=None, **kwargs):
        watch: Watch | None = kwargs.pop("mlops_watch", None)
        if watch is None and "leased_km" not in kwargs:
            # Called as `papermill -e mlops-nb`: take a kernel from the project's daemon when one runs.
            return cls._execute_on_daemon(nb_man, kernel_name, log_output=log_output, stdout_file=stdout_file,
                                          stderr_file=stderr_file, start_timeout=start_timeout,
                                          execution_timeout=execution_timeout, **kwargs)
        kernel_log = kwargs.pop("kernel_log", None)  # the kernel process's own stdout/stderr
        cwd = kwargs.pop("mlops_cwd", None)          # where a fresh kernel starts (a pooled one is prepared)
        env = kwargs.pop("mlops_env", None)          # a fresh kernel's environment (default: ours)
        leased = kwargs.pop("leased_km", None)       # a pooled kernel (mlops_nb.kernels.lease)
        kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
        fresh_km = None
        if leased is None:
            from mlops_nb.kernels.launch import new_kernel_manager

            fresh_km = new_kernel_manager(kernel_name, asynchronous=True)
        client = PapermillNotebookClient(nb_man, km=leased or fresh_km, timeout=execution_timeout,
                                         startup_timeout=start_timeout,
                                         kernel_name=kernel_name, log_output=log_output, stdout_file=stdout_file,
                                         stderr_file=stderr_file, **kwargs)
        if cwd is not None:
            client.resources = {**client.resources, "metadata": {**client.resources.get("metadata", {}),
                                                                 "path": cwd}}
        if watch is not None:
            watch.client = client
            code_cells = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]

            def on_cell_start(cell, cell_index, **_):
                watch.cell_source = cell.source
                if watch.stopped.is_set():
                    raise KeyboardInterrupt
                timeout = watch.cell_timeout_now()
                client.timeout = None if timeout is None or math.isinf(timeout) else max(1, int(math.ceil(timeout)))
                if watch.on_cell is not None and cell.cell_type == "code":
                    watch.on_cell(watch.step, code_cells.index(cell_index) + 1 if cell_index in code_cells else 0,
                                  len(code_cells))

            client.on_cell_start = on_cell_start
        if leased is not None:
            try:
                return client.execute()
            finally:
                leased.close_clients()
        try:
            started = {"env": env} if env is not None else {}
            if kernel_log is not None:
                return client.execute(stdout=kernel_log, stderr=kernel_log, **started)
            return client.execute(**started)
        finally:
            _stop_fresh_kernel(client, fresh_km)


    @classmethod
    def _execute_on_daemon(cls, nb_man, kernel_name, **kwargs):
        import os

        from mlops_nb.kernels.daemon import DaemonPool, running_daemon
        from mlops_nb.kernels.lease import LeasedKernelManager
        from mlops_nb.registry.home import find_home

        path = running_daemon(find_home())
        if path is None:
            return cls.execute_managed_notebook(nb_man, kernel_name, mlops_watch=Watch("papermill"), **kwargs)
        pool = DaemonPool(path, kernel_name)
        kernel = pool.acquire()
        healthy = False
        try:
            pool.prepare(kernel, os.getcwd(), dict(os.environ))
            leased = LeasedKernelManager(kernel.connection_info, kernel.pid, kernel_name)
            result = cls.execute_managed_notebook(nb_man, kernel_name, mlops_watch=Watch("papermill"),
                                                  leased_km=leased, **kwargs)
            healthy = True
            return result
        finally:
            pool.release(kernel, healthy=healthy)


def _stop_fresh_kernel(client, km) -> None:
    """We made the kernel manager (for IPC), so nbclient leaves the shutdown to us."""
    from jupyter_core.utils import run_sync

    try:
        if client.kc is not None:
            client.kc.stop_channels()
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
        run_sync(km.cleanup_resources)()
    except Exception:  # a kernel that is already gone
        pass
