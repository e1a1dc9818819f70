"""A second local user, for tests of what another user of the machine could do to ours."""

import contextlib
import os
import shutil
import subprocess

import pytest

OTHER_USER = "mlopsnb-other" + os.environ.get("PYTEST_XDIST_WORKER", "").replace("gw", "")  # one per worker


@contextlib.contextmanager
def second_user():
    """An unprivileged user made with useradd (so the tests must run as root, as CI does), removed after."""
    if os.geteuid() != 0 or not (shutil.which("useradd") and shutil.which("runuser")):
        message = "needs root with useradd and runuser to make a second local user (CI runs the tests as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    made = subprocess.run(["id", "-u", OTHER_USER], capture_output=True).returncode != 0
    if made:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER], check=True)
    try:
        yield OTHER_USER
    finally:
        if made:
            subprocess.run(["userdel", OTHER_USER], capture_output=True)


def as_user(user: str, *command: str) -> subprocess.CompletedProcess:
    """Run ``command`` as ``user`` (runuser); the finished process."""
    return subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True, text=True, timeout=60)
