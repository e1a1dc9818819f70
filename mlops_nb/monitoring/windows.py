"""Windows over the prediction log: a duration (``1h``) or a number of predictions (``500``)."""

from __future__ import annotations

import re

from mlops_nb.errors import InvalidInputError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(value) -> tuple[str, float]:
    """``"1h"``, ``"30m"``, ``"1d"`` -> ("time", seconds); ``500`` or ``"500"`` -> ("count", 500)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return "count", value
    text = str(value).strip()
    if text.isdigit() and int(text) > 0:
        return "count", int(text)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if not match or float(match.group(1)) <= 0:
        raise InvalidInputError(f"window {value!r} is a duration (30m, 1h, 1d, 1w) or a number of predictions (500)")
    return "time", float(match.group(1)) * UNITS[match.group(2)]


def window_seconds(value) -> float:
    kind, size = parse_window(value)
    if kind != "time":
        raise InvalidInputError(f"window {value!r} here is a duration: 30m, 1h, 1d, 1w")
    return size
