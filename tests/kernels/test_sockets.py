"""Socket files of kernels whose starting process was killed do not pile up."""

import json
import os
import stat
import subprocess
import sys
import tempfile

from mlops_nb.kernels import launch
from mlops_nb.kernels.launch import new_kernel_manager, sweep_stale_sockets
from tests.users import as_user

NOTEBOOK = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "n = 1", "outputs": [],
                       "execution_count": None},
                      {"cell_type": "code", "metadata": {}, "source": "m = n + 1", "outputs": [],
                       "execution_count": None}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


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


def test_a_socket_folder_another_user_planted_is_not_used(other_user, shared_tmp, tmp_path):
    planted = shared_tmp / f"mlops-nb-{os.getuid()}"
    made = as_user(other_user, "mkdir", "-m", "0777", str(planted))
    assert made.returncode == 0, made.stderr
    (tmp_path / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
    (tmp_path / "pipeline.yaml").write_text("name: p\nsteps:\n  - name: s\n    notebook: nb.ipynb\n")
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env.update(TMPDIR=str(shared_tmp), MLOPS_NB_HOME=str(tmp_path / ".mlops"))
    done = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "run", "--quiet", "--engine", "warm"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"not using {planted} for kernel sockets: it belongs to another user" in done.stderr
    assert list(planted.iterdir()) == []  # none of our sockets went there


def test_the_socket_folder_is_ours_and_closed_to_others(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(launch, "_folder", None)
    (tmp_path / f"mlops-nb-{os.getuid()}").mkdir(mode=0o755)  # ours, but open to others: refused too
    folder = launch.socket_folder()
    assert folder.parent == tmp_path and folder.name.startswith(f"mlops-nb-{os.getuid()}-")
    assert launch.folder_problem(folder) is None and stat.S_IMODE(folder.stat().st_mode) == 0o700
