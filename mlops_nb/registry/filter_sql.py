"""Compiling a parsed run filter (registry.query) into parameterised SQL.

Each comparison selects a set of run ids through an index; ``and``/``or``/``not``
combine the sets with INTERSECT/UNION/EXCEPT, chains flattened so that long filters
do not nest deeply. Values are always bound parameters, never pasted into SQL.
"""

from __future__ import annotations

import math
from datetime import datetime

from mlops_nb.errors import FilterSyntaxError
from mlops_nb.registry.dialect import SQLITE, Dialect
from mlops_nb.registry.query import (ATTRIBUTES, MAX_TERMS, TIME_ATTRIBUTES, BoolOp, Comparison, Node, Not)

_TABLES = {"metric": "latest_metrics", "param": "params", "tag": "tags"}


def compile_filter(node: Node, text: str = "", dialect: Dialect = SQLITE) -> tuple[str, list]:
    """A SQL condition on the run ``r`` (joined with its experiment ``e``) that holds for the matching
    runs, and its parameters. Each comparison is ``r.id IN (...)`` or a condition on ``r``'s own columns,
    so the statement nests only as deep as the filter's parentheses."""
    args = _Args()
    args.dialect = dialect
    return _compile(node, args, text), list(args)


class _Args(list):
    """The statement's parameters so far, and the database it is for."""
    dialect: Dialect


def _flatten(node: Node, op: str) -> list[Node]:
    if isinstance(node, BoolOp) and node.op == op:
        return _flatten(node.left, op) + _flatten(node.right, op)
    return [node]


def _compile(node: Node, args: list, text: str) -> str:
    if isinstance(node, BoolOp):
        parts = _flatten(node, node.op)
        if len(parts) > MAX_TERMS:
            raise FilterSyntaxError(f"the filter combines {len(parts)} terms with {node.op!r}; at most {MAX_TERMS}: "
                                    "use `in (...)` for long lists of values", text, 0)
        return "(" + f" {node.op.upper()} ".join(_compile(part, args, text) for part in parts) + ")"
    if isinstance(node, Not):
        if isinstance(node.operand, Not):  # not not x == x
            return _compile(node.operand.operand, args, text)
        return f"(NOT {_compile(node.operand, args, text)})"
    return _compile_comparison(node, args, text)


def _compile_comparison(cmp: Comparison, args: list, text: str) -> str:
    field = cmp.field
    if field.namespace == "attr":
        column = ATTRIBUTES[field.key]
        condition = _condition(column, cmp, args, text, numeric=field.key in TIME_ATTRIBUTES)
        return f"COALESCE(({condition}), FALSE)"  # a missing value (NULL) fails the comparison, and passes its `not`
    table = _TABLES[field.namespace]
    args.append(field.key)
    if cmp.op == "isnull":
        return f"r.id NOT IN (SELECT run_id FROM {table} WHERE key = ?)"
    if cmp.op == "notnull":
        return f"r.id IN (SELECT run_id FROM {table} WHERE key = ?)"
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    if field.namespace == "metric":
        if any(isinstance(v, str) for v in values) or cmp.op.endswith("like"):
            raise FilterSyntaxError(f"{field.label} is a metric and compares with numbers, not text",
                                    text, max(text.find(field.key), 0))
        condition = _metric_condition(cmp, values, args, text)
    elif field.namespace == "param" and not cmp.op.endswith("like"):
        condition = _param_condition(cmp, values, args)
    else:
        condition = _condition("value", cmp, args, text)
    return f"r.id IN (SELECT run_id FROM {table} WHERE key = ? AND {condition})"


def _metric_condition(cmp: Comparison, values: tuple, args: list, text: str) -> str:
    # NaN is stored as NULL (SQLite has no NaN): `= nan` finds it, `!= nan` finds the rest.
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        if cmp.op in ("=", "in"):
            return "value IS NULL"
        if cmp.op in ("!=", "not in"):
            return "value IS NOT NULL"
        raise FilterSyntaxError(f"nan only compares with = or != (in {cmp.field.label} {cmp.op} nan)", text, 0)
    return _condition("value", cmp, args, text)


def _param_condition(cmp: Comparison, values: tuple, args: list) -> str:
    """Params compare as numbers with numeric params and as text with text params."""
    op = cmp.op
    numbers = [v for v in values if _is_number(v)]
    texts = [v for v in values if isinstance(v, str)]
    if op in ("in", "not in"):
        parts = []
        if numbers:
            parts.append(f"num IN ({', '.join('?' * len(numbers))})")
            args.extend(numbers)
        as_text = texts + [_number_text(n) for n in numbers]
        parts.append(f"(num IS NULL AND value IN ({', '.join('?' * len(as_text))}))")
        args.extend(as_text)
        condition = " OR ".join(parts)
        return f"NOT ({condition})" if op == "not in" else f"({condition})"
    value = values[0]
    if not _is_number(value):
        args.append(value)
        return f"value {op} ?"
    if op in ("=", "!="):
        args.extend([value, _number_text(value)])
        return f"(num {op} ? OR (num IS NULL AND value {op} ?))"
    args.append(value)
    return f"num {op} ?"


def _number_text(value: float | int) -> str:
    # The text a numeric param is stored as (registry.values.encode_param).
    return repr(value) if isinstance(value, float) else str(value)


def _condition(column: str, cmp: Comparison, args: list, text: str, numeric: bool = False) -> str:
    op, value = cmp.op, cmp.value
    if op == "isnull":
        return f"{column} IS NULL"
    if op == "notnull":
        return f"{column} IS NOT NULL"
    if numeric:
        value = tuple(_as_time(v, text) for v in value) if isinstance(value, tuple) else _as_time(value, text)
    if op.endswith("in"):
        args.extend(value)
        return f"{column} {'NOT ' if op.startswith('not') else ''}IN ({', '.join('?' * len(value))})"
    if op.endswith("ilike"):
        args.append(value)
        return f"{column} {'NOT ' if op.startswith('not') else ''}{args.dialect.like} ?"
    if op.endswith("like"):
        # SQLite's LIKE ignores ASCII case; its GLOB is case-sensitive, so translate.
        args.append(args.dialect.pattern(value))
        return f"{column} {'NOT ' if op.startswith('not') else ''}{args.dialect.glob} ?"
    args.append(value)
    return f"{column} {op} ?"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_time(value: object, text: str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise FilterSyntaxError(f"{value!r} is not a time: use a number of seconds or an ISO date such as "
                                "'2026-11-24' or '2026-11-24T18:00'", text, max(text.find(str(value)), 0)) from None

