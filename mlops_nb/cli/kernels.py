"""`mlops-nb kernels start|ls|stop`: the warm-kernel daemon of a project."""

from __future__ import annotations

import click

from mlops_nb.cli.base import Group, cli, home_option, json_option, show
from mlops_nb.registry.home import find_home
from mlops_nb.show import views


@cli.group("kernels", cls=Group)
def kernels_group() -> None:
    """A pool of warm kernels that later `run` and `sweep` commands use (a small local daemon)."""


@kernels_group.command("start")
@click.option("-n", "--size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Kernels to keep ready (set it to your usual --jobs).")
@click.option("--idle-timeout", type=click.FloatRange(min=1), default=900, show_default=True,
              help="Seconds without use after which the daemon stops its kernels and exits.")
@click.option("--preload", multiple=True, metavar="MODULE", help="A module kernels import ahead (repeatable).")
@click.option("--kernel", default="python3", show_default=True, help="The kernel to pool.")
@json_option
@click.pass_context
def kernels_start(ctx, size, idle_timeout, preload, kernel, as_json) -> None:
    """Start the kernel daemon for this project (or show the one running)."""
    from mlops_nb.kernels.daemon import start_daemon

    reply = start_daemon(find_home(home_option(ctx)), size=size, idle_timeout=idle_timeout, preload=list(preload),
                         kernel=kernel)
    show(ctx, views.MessageView(f"kernel daemon pid {reply['pid']} on {reply['socket']} "
                                f"(stops after {idle_timeout:g} s idle)", reply), as_json)


@kernels_group.command("ls")
@json_option
@click.pass_context
def kernels_ls(ctx, as_json) -> None:
    """The daemon's kernels: state, runs, memory, idle time."""
    from mlops_nb.kernels.daemon import request, running_daemon

    path = running_daemon(find_home(home_option(ctx)))
    reply = request(path, {"op": "ls"}) if path is not None else None
    show(ctx, views.KernelsView(reply), as_json)


@kernels_group.command("stop")
@json_option
@click.pass_context
def kernels_stop(ctx, as_json) -> None:
    """Stop the daemon and every kernel it started."""
    from mlops_nb.kernels.daemon import stop_daemon

    stopped = stop_daemon(find_home(home_option(ctx)))
    show(ctx, views.MessageView("kernel daemon stopped" if stopped else "no kernel daemon was running",
                                {"stopped": stopped}), as_json)
