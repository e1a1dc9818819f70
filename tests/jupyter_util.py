"""Starting a real Jupyter server (jupyter_server or jupyterlab) for a test, and stopping it."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest


# Only our server extension: what the REST API tests need, and a third of the server's start-up time less.
ONLY_MLOPS_NB = ("--ServerApp.jpserver_extensions={'mlops_nb': True, 'jupyterlab': False, 'jupyter_lsp': False, "
                 "'jupyter_server_terminals': False, 'notebook_shim': False}",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(module: str, root, token: str, log_path, env: dict, args=()):
    """``python -m <module>`` on 127.0.0.1 serving ``root``; yields its base URL once /api/status answers."""
    port = free_port()
    cmd = [sys.executable, "-m", module, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False", *args]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(log_path, "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail(f"{module} did not start: {open(log_path).read()[-2000:]}")
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
