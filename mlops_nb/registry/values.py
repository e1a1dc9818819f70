"""How params, metrics and tags are checked and encoded for storage.

A param is stored three ways: ``value`` (text, what users see and filter on with
``=``/``like``), ``num`` (a REAL for numeric params, so ``params.C > 0.5`` compares
numbers) and ``json`` (set when the value is not a plain string, so it comes back
with its type).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from typing import Any

from mlops_nb.errors import InvalidInputError

MAX_KEY_LENGTH = 250


def check_key(key: object, what: str) -> str:
    if type(key) is not str:
        raise InvalidInputError(
            f"{what} key must be a string, got {type(key).__name__} {key!r}: use str({key!r}) or a name")
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key or key != key.strip():
        raise InvalidInputError(
            f"{what} key {key!r} is not valid: use 1-{MAX_KEY_LENGTH} characters without NUL or "
            "leading/trailing spaces")
    return key


def encode_param(key: object, value: Any) -> tuple[str, str, float | None, str | None]:
    """Return (key, text, num, json) for storage, or raise InvalidInputError."""
    key = check_key(key, "param")
    try:
        return _encode(key, _plain(value))
    except RecursionError:
        raise InvalidInputError(f"param {key!r} cannot be stored: it contains itself (a list or dict that "
                                "refers to itself) or nests too deeply") from None


def _encode(key: str, value: Any) -> tuple[str, str, float | None, str | None]:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_INT_BITS:
        raise InvalidInputError(f"param {key!r} is an integer of more than 4,000 digits: log it as text "
                                "(str(value)) or as an artifact")
    if isinstance(value, str):
        return key, value, None, None
    if value is None or isinstance(value, bool):
        return key, str(value), None, json.dumps(value)
    if isinstance(value, (int, float)):
        try:
            num = float(value) if not (isinstance(value, float) and math.isnan(value)) else None
        except OverflowError:  # an int beyond a double's range stays comparable as text only
            num = None
        return key, repr(value) if isinstance(value, float) else str(value), num, json.dumps(value)
    try:
        text = json.dumps(value, sort_keys=True, default=_refuse)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"param {key!r} cannot be stored ({exc}): pass a str, number, bool, None, or a list/dict "
            "of them") from None
    return key, text, None, text


_MAX_INT_BITS = 13_000  # about 4,000 decimal digits; Python refuses to print ints past 4,300


def decode_param(text: str, json_text: str | None) -> Any:
    return text if json_text is None else json.loads(json_text)


def check_mapping(value: Any, what: str):
    """``value`` if it is a mapping (None counts as empty), else InvalidInputError."""
    from collections.abc import Mapping

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a mapping of names to values, e.g. {{'C': 1.0}}, "
                                f"got {type(value).__name__}")
    return value


def check_metric(key: object, value: object) -> float:
    """Return ``value`` as a float (NaN and infinities included) or raise InvalidInputError."""
    check_key(key, "metric")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"metric {key!r} must be a real number, got {type(value).__name__} {value!r}: log numbers "
            "as metrics and text as params or tags")
    try:
        return float(value)
    except OverflowError:
        raise InvalidInputError(f"metric {key!r} is too large for a float ({str(value)[:20]}…)") from None


def tag_text(key: object, value: object) -> tuple[str, str]:
    key = check_key(key, "tag")
    return key, value if isinstance(value, str) else str(value)


def _plain(value: Any) -> Any:
    """Turn numpy scalars and paths into plain Python values."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _refuse(value: Any) -> Any:
    raise TypeError(f"a value of type {type(value).__name__} is not JSON-serialisable")
