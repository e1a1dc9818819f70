"""The run filter grammar: parsed into a tree, compiled to parameterised SQL.

Grammar (keywords are case-insensitive)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" filter ")" | comparison
    comparison := field op value
                | field ["not"] ("like" | "ilike") string
                | field ["not"] "in" "(" value ("," value)* ")"
                | field "is" ["not"] "null"
    field      := ("metrics" | "params" | "tags") "." key  |  attribute
    key        := name with letters, digits, "_", "-", "/", "." ; or `any text` in backticks
    attribute  := id | name | status | kind | experiment | parent_id | start_time | end_time
                | git_commit     (also written as attributes.<name> or run.<name>)
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    value      := number | 'text' | "text" | inf | nan

Examples::

    metrics.accuracy > 0.9 and params.model = 'rf'
    (params.C >= 1 or tags.team like 'ml%') and status = 'finished'
    start_time > '2026-11-01' and metrics.`val loss` is not null

A filter holds at most 400 comparisons (use ``in (...)`` for long lists of values),
nests parentheses and ``not`` at most 32 deep, and a number has at most 30 digits.

Metrics compare their latest value. Params compare as numbers when the value
given is a number and the param is numeric, as text otherwise. A comparison on a
key that a run lacks is false for that run (use ``is null`` to find those runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from mlops_nb.errors import FilterSyntaxError

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])|[-+]?(?i:inf|nan)(?![\w.]))
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<unterminated>['"])
  | (?P<field>(?:[A-Za-z_][\w\-/]*)(?:\.(?:`[^`]+`|[\w\-/]+))*)
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE)

NAMESPACES = {"metrics": "metric", "metric": "metric", "params": "param", "param": "param",
              "tags": "tag", "tag": "tag", "attributes": "attr", "attribute": "attr", "attr": "attr",
              "run": "attr"}
ATTRIBUTES = {"id": "r.id", "run_id": "r.id", "name": "r.name", "run_name": "r.name", "status": "r.status",
              "kind": "r.kind", "experiment": "e.name", "parent_id": "r.parent_id",
              "start_time": "r.start_time", "end_time": "r.end_time", "git_commit": "r.git_commit",
              "user": "r.user_name", "host": "r.host"}
TIME_ATTRIBUTES = {"start_time", "end_time"}
KEYWORDS = {"and", "or", "not", "like", "ilike", "in", "is", "null"}
_INT64 = 1 << 63
MAX_TERMS = 400  # SQLite allows 500 terms in one compound SELECT
SQL_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Field:
    namespace: str  # metric | param | tag | attr
    key: str

    @property
    def label(self) -> str:
        return self.key if self.namespace == "attr" else f"{self.namespace}s.{self.key}"


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str          # = != < <= > >= like ilike in isnull notnull (prefixed "not " for negated like/in)
    value: object    # a number, a string, a tuple of them, or None


@dataclass(frozen=True)
class BoolOp:
    op: str          # and | or
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Not:
    operand: "Node"


Node = Union[Comparison, BoolOp, Not]


@dataclass
class _Token:
    kind: str
    text: str
    pos: int

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "field" else ""


def tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FilterSyntaxError(f"unexpected character {text[pos]!r} in filter", text, pos)
        if match.lastgroup == "unterminated":
            raise FilterSyntaxError(f"the string starting at column {pos + 1} has no closing {text[pos]}", text, pos)
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def parse_filter(text: str) -> Node | None:
    """Parse a filter string into a tree; None for an empty filter."""
    if text is None or not str(text).strip():
        return None
    parser = _Parser(str(text))
    try:
        node = parser.or_expr()
    except RecursionError:
        raise FilterSyntaxError("the filter nests parentheses or 'not' too deeply", str(text), 0) from None
    parser.expect_end()
    return node


MAX_DEPTH = 32        # parentheses and 'not' nested in one another
_MAX_DIGITS = 30


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def fail(self, expected: str, token: _Token | None = None) -> FilterSyntaxError:
        token = token or self.tok
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        return FilterSyntaxError(f"expected {expected} at column {token.pos + 1}, found {found}",
                                 self.text, token.pos)

    def take_word(self, word: str) -> bool:
        if self.tok.word == word:
            self.i += 1
            return True
        return False

    def expect_end(self) -> None:
        if self.tok.kind != "end":
            raise self.fail("'and', 'or' or the end of the filter")

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.take_word("or"):
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.take_word("and"):
            node = BoolOp("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.tok.word == "not" or self.tok.text == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterSyntaxError(f"the filter nests parentheses or 'not' too deeply (over {MAX_DEPTH} levels) "
                                        f"at column {self.tok.pos + 1}: flatten it", self.text, self.tok.pos)
            try:
                if self.take_word("not"):
                    return Not(self.unary())
                self.i += 1
                node = self.or_expr()
                if self.tok.text != ")":
                    raise self.fail("')'")
                self.i += 1
                return node
            finally:
                self.depth -= 1
        return self.comparison()

    def comparison(self) -> Comparison:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterSyntaxError(f"the filter has more than {MAX_TERMS} comparisons, at most {MAX_TERMS}: use "
                                    "`in (...)` for long lists of values", self.text, self.tok.pos)
        field = self.field()
        tok = self.tok
        if tok.kind == "op":
            self.i += 1
            return Comparison(field, SQL_OPS[tok.text], self.value(field))
        negate = self.take_word("not")
        if self.tok.word in ("like", "ilike"):
            op = self.tok.word
            self.i += 1
            value = self.value(field)
            if not isinstance(value, str):
                raise self.fail(f"a quoted pattern after {op}", self.tokens[self.i - 1])
            return Comparison(field, ("not " if negate else "") + op, value)
        if self.take_word("in"):
            return Comparison(field, ("not " if negate else "") + "in", self.value_list(field))
        if not negate and self.take_word("is"):
            is_not = self.take_word("not")
            if not self.take_word("null"):
                raise self.fail("'null' after 'is'")
            return Comparison(field, "notnull" if is_not else "isnull", None)
        raise self.fail("a comparison operator (=, !=, <, <=, >, >=, like, ilike, in, is null)")

    def field(self) -> Field:
        tok = self.tok
        if tok.kind != "field" or tok.word in KEYWORDS:
            raise self.fail("a field such as metrics.accuracy, params.C, tags.team or status")
        self.i += 1
        head, _, rest = tok.text.partition(".")
        namespace = NAMESPACES.get(head.lower())
        if namespace is None:
            namespace, rest = "attr", tok.text
        key = rest[1:-1] if rest.startswith("`") and rest.endswith("`") else rest
        if not key:
            raise self.fail(f"a key after '{head}.' (e.g. {head}.accuracy)", tok)
        if namespace == "attr" and key.lower() not in ATTRIBUTES:
            raise FilterSyntaxError(
                f"unknown field {tok.text!r} at column {tok.pos + 1}: use metrics.<key>, params.<key>, "
                f"tags.<key> or one of {', '.join(sorted(ATTRIBUTES))}", self.text, tok.pos)
        return Field(namespace, key.lower() if namespace == "attr" else key)

    def value(self, field: Field) -> object:
        tok = self.tok
        self.i += 1
        if tok.kind == "number":
            if sum(c.isdigit() for c in tok.text) > _MAX_DIGITS:
                raise FilterSyntaxError(f"the number at column {tok.pos + 1} has more than {_MAX_DIGITS} digits",
                                        self.text, tok.pos)
            if tok.text.lstrip("+-").lower() in ("inf", "nan"):
                return float(tok.text)
            if any(c in tok.text for c in ".eE"):
                return float(tok.text)
            number = int(tok.text)
            return number if -_INT64 <= number < _INT64 else float(number)  # SQLite integers are 64-bit
        if tok.kind == "string":
            quote = tok.text[0]
            body = tok.text[1:-1].replace(quote * 2, quote)
            return re.sub(r"\\(.)", r"\1", body)
        if tok.kind == "field" and tok.word not in KEYWORDS:
            raise FilterSyntaxError(
                f"expected a number or a quoted string at column {tok.pos + 1}, found {tok.text!r}: "
                f"quote text values, e.g. {field.label} = '{tok.text}'", self.text, tok.pos)
        self.i -= 1
        raise self.fail("a number or a quoted string")

    def value_list(self, field: Field) -> tuple:
        if self.tok.text != "(":
            raise self.fail("'(' to start the list after 'in'")
        self.i += 1
        values = [self.value(field)]
        while self.tok.text == ",":
            self.i += 1
            values.append(self.value(field))
        if self.tok.text != ")":
            raise self.fail("',' or ')' in the list after 'in'")
        self.i += 1
        return tuple(values)


def compile_filter(node: Node, text: str = "", dialect=None) -> tuple[str, list]:
    """A SQL condition on run ``r`` that holds for the matching runs, and its parameters (see registry.filter_sql)."""
    from mlops_nb.registry.dialect import SQLITE
    from mlops_nb.registry.filter_sql import compile_filter as compile_

    return compile_(node, text, dialect or SQLITE)
