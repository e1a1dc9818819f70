"""What differs between the two databases a registry lives in, in one place.

The registry's SQL is written once, in the subset SQLite and PostgreSQL share (``INSERT ... ON CONFLICT``,
``RETURNING``, partial indexes), with SQLite's ``?`` placeholders. A :class:`Dialect` says what changes:
the placeholders and the column types of a migration's DDL, case-sensitive pattern matching, and how a
list of ids is joined against a table. :data:`SQLITE` changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlops_nb.registry.schema import POSTGRESQL_ONLY


@dataclass(frozen=True)
class Dialect:
    name: str
    like: str                 # case-insensitive LIKE
    glob: str                 # case-sensitive match of a LIKE pattern, after :meth:`pattern`
    glob_wildcards: bool      # GLOB takes * and ? (SQLite) rather than % and _ (PostgreSQL's LIKE)

    def pattern(self, like_pattern: str) -> str:
        """A LIKE pattern (``%``, ``_``) as the case-sensitive operator :attr:`glob` takes it."""
        return _like_to_glob(like_pattern) if self.glob_wildcards else like_pattern

    def sql(self, statement: str) -> str:
        """A statement of the registry's SQL as this database runs it."""
        return statement

    def ddl(self, statement: str) -> str | None:
        """A migration's statement as this database runs it; None: not run here."""
        return None if statement.startswith(POSTGRESQL_ONLY) else statement

    def ids_table(self, placeholder: str = "?") -> str:
        """A table ``j(key, value)`` of a list of ids passed as one parameter (:meth:`ids_param`), ``key``
        being each id's position in the list."""
        return f"json_each({placeholder}) j"

    def ids_param(self, ids: list[str]):
        import json

        return json.dumps(ids)

    def rows_of_ids(self, table: str, alias: str, columns: str) -> str:
        """``FROM`` the ids table ``j`` (one parameter, :meth:`ids_param`) and the ``columns`` of the rows of
        ``table`` (as ``alias``) whose run_id is one of them, each looked up by its key."""
        return f"{self.ids_table()} JOIN {table} {alias} ON {alias}.run_id = j.value"

    def positions(self, column: str) -> str:
        """An aggregate of a group's integers, read back by :meth:`read_positions`."""
        return f"group_concat({column})"

    def read_positions(self, value):
        """The integers of :meth:`positions` as a numpy array."""
        import numpy as np

        return np.fromstring(value, dtype=np.int64, sep=",")

    def latest_metrics(self) -> str:
        """The latest metrics of the runs of the ids table, read back by :meth:`read_latest_metrics`."""
        return f"SELECT j.key, m.key, m.value FROM {self.rows_of_ids('latest_metrics', 'm', 'key, value')}"

    def read_latest_metrics(self, rows):
        """(key, positions, values) for each metric key: the positions in the ids list of the runs that have
        the key and their latest values (NaN for a NaN logged), as numpy arrays."""
        import numpy as np

        by_key: dict[str, tuple[list, list]] = {}
        for position, key, value in rows:
            column = by_key.get(key)
            if column is None:
                column = by_key[key] = ([], [])
            column[0].append(position)
            column[1].append(value)
        for key, (positions, values) in by_key.items():
            yield key, np.array(positions, dtype=np.int64), np.array(values, dtype=float)  # None -> NaN


class _Postgres(Dialect):
    def sql(self, statement: str) -> str:
        cached = _translated.get(statement)
        if cached is None:
            cached = _translated[statement] = _placeholders(statement)
        return cached

    def ddl(self, statement: str) -> str:
        statement = statement.removeprefix(POSTGRESQL_ONLY)
        for pattern, replacement in _PG_DDL:
            statement = pattern.sub(replacement, statement)
        return self.sql(statement)

    def ids_table(self, placeholder: str = "?") -> str:
        return f"(SELECT value, ord - 1 AS key FROM unnest({placeholder}::text[]) WITH ORDINALITY AS u(value, ord)) j"

    def ids_param(self, ids: list[str]) -> str:
        # One array literal, parsed by the server (psycopg would adapt a list an id at a time); the planner
        # then knows how many ids there are, as for an array.
        joined = '","'.join(ids)
        if "\\" in joined or joined.count('"') != 2 * (len(ids) - 1):  # an id holding a quote or backslash
            joined = '","'.join(i.replace("\\", "\\\\").replace('"', '\\"') for i in ids)
        return '{"' + joined + '"}' if ids else "{}"

    def rows_of_ids(self, table: str, alias: str, columns: str) -> str:
        # An index lookup per id, where a join would hash the whole table for a few ids (OFFSET 0 keeps the
        # planner from flattening the LATERAL subquery back into that join).
        return (f"{self.ids_table()} CROSS JOIN LATERAL "
                f"(SELECT {columns} FROM {table} WHERE run_id = j.value OFFSET 0) {alias}")

    # Big integers and floats travel as one bytea of their binary forms per group: exact, and read in C.
    def positions(self, column: str) -> str:
        return f"string_agg(int4send({column}::int4), ''::bytea)"

    def read_positions(self, value):
        import numpy as np

        return np.frombuffer(value, dtype=">i4")

    def latest_metrics(self) -> str:
        # Both aggregates of a group take its rows in the same order, so positions and values line up.
        return (f"SELECT m.key, {self.positions('j.key')}, string_agg(float8send(coalesce(m.value, 'NaN')), "
                f"''::bytea) FROM {self.rows_of_ids('latest_metrics', 'm', 'key, value')} GROUP BY m.key")

    def read_latest_metrics(self, rows):
        import numpy as np

        for key, positions, values in rows:
            yield key, self.read_positions(positions), np.frombuffer(values, dtype=">f8")


SQLITE = Dialect("sqlite", like="LIKE", glob="GLOB", glob_wildcards=True)
POSTGRES = _Postgres("postgresql", like="ILIKE", glob="LIKE", glob_wildcards=False)

_translated: dict[str, str] = {}

# SQLite's column types as PostgreSQL's: ids that count up, 64-bit integers (sizes, nanosecond mtimes), doubles.
_PG_DDL = [
    (re.compile(r"\bid INTEGER PRIMARY KEY\b"), "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\)\s*WITHOUT ROWID\s*$"), ")"),
]


def _placeholders(statement: str) -> str:
    """``?`` as psycopg's ``%s`` (and a literal ``%`` doubled), outside quoted strings."""
    out, quoted = [], False
    for ch in statement:
        if ch == "'":
            quoted = not quoted
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


def _like_to_glob(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)
