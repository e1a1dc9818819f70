"""Socket files of kernels whose starting process was killed do not pile up."""

import os
import subprocess
import sys

from mlops_nb.kernels.launch import new_kernel_manager, sweep_stale_sockets


def test_sockets_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for name in (f"k-{gone.pid}-0a1b2c3d4e-1", f"k-{gone.pid}-0a1b2c3d4e-2", f"k-{os.getpid()}-5f6a7b8c9d-1",
                 "k-0a1b2c3d4e5f-1"):  # the last: an older name without a process id, left alone
        (tmp_path / name).touch()
    assert sweep_stale_sockets(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k-0a1b2c3d4e5f-1", f"k-{os.getpid()}-5f6a7b8c9d-1"]


def test_kernel_socket_names_carry_the_starting_process():
    km = new_kernel_manager("python3")
    assert os.path.basename(km.ip).startswith(f"k-{os.getpid()}-")
