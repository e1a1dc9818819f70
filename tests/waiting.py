"""Waiting on state, not on the clock: tests poll for what they expect, with a generous limit."""

import os
import time
from pathlib import Path


def wait_for(condition, what: str, timeout: float = 60.0, every: float = 0.1):
    """``condition()``'s first true value; an AssertionError naming ``what`` if none comes in ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(every)


def age(*paths: Path, seconds: float = 30.0) -> None:
    """Make files look written ``seconds`` ago, as if they had settled (the triggers judge by mtime)."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))
