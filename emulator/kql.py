"""A small subset of KQL for DCR ``transformKql``, compiled once into Python callables.

Ingestion-time transformations only support row-by-row operators, so a transform here
is a chain of per-row stages: ``source | where … | extend … | project …``. Anything
outside the subset fails when the DCR is loaded, naming the offending token, rather
than silently passing rows through unchanged.

Nulls follow KQL: a string column is never null inside an expression (it reads as
``""``), comparisons and arithmetic with a null give null, and ``where`` keeps a row
only when the predicate is ``true``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from emulator.schema import dumps_dynamic, format_datetime, format_timespan, parse_datetime

Row = dict[str, Any]
Fn = Callable[[Row], Any]
Stage = Callable[[Row], "Row | None"]

NUMERIC = ("int", "long", "real")
_NUM_RANK = {"int": 0, "long": 1, "real": 2}
_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)


class KqlError(ValueError):
    """The transform uses syntax or types outside the supported subset."""

    def __init__(self, message: str, pos: int | None = None, token: str | None = None) -> None:
        self.detail = message
        self.pos = pos
        self.token = token
        where = ""
        if pos is not None:
            where = f" at offset {pos}"
            if token is not None:
                where += f" (token {token!r})"
        super().__init__(message + where)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # ident, int, real, timespan, string, datetime, op, eof
    text: str
    value: Any
    pos: int


_OPERATORS = (
    "==",
    "!=",
    "<=",
    ">=",
    "=~",
    "!~",
    "|",
    ",",
    "(",
    ")",
    "[",
    "]",
    ".",
    "=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
)
_DIGITS = frozenset("0123456789")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROJECT_VARIANT = re.compile(r"-(away|rename|keep|reorder)\b")
_NUMBER = re.compile(r"(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", re.ASCII)
_UNITS = {
    "d": dt.timedelta(days=1),
    "day": dt.timedelta(days=1),
    "days": dt.timedelta(days=1),
    "h": dt.timedelta(hours=1),
    "hr": dt.timedelta(hours=1),
    "hrs": dt.timedelta(hours=1),
    "hour": dt.timedelta(hours=1),
    "hours": dt.timedelta(hours=1),
    "m": dt.timedelta(minutes=1),
    "min": dt.timedelta(minutes=1),
    "minute": dt.timedelta(minutes=1),
    "minutes": dt.timedelta(minutes=1),
    "s": dt.timedelta(seconds=1),
    "sec": dt.timedelta(seconds=1),
    "second": dt.timedelta(seconds=1),
    "seconds": dt.timedelta(seconds=1),
    "ms": dt.timedelta(milliseconds=1),
    "milli": dt.timedelta(milliseconds=1),
    "millis": dt.timedelta(milliseconds=1),
    "millisecond": dt.timedelta(milliseconds=1),
    "milliseconds": dt.timedelta(milliseconds=1),
    "microsecond": dt.timedelta(microseconds=1),
    "microseconds": dt.timedelta(microseconds=1),
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def tokenize(query: str) -> list[Token]:
    """Split a query into tokens; raise :class:`KqlError` on a character KQL would not accept."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        if query.startswith("//", i):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if ch in "\"'" or (ch == "@" and i + 1 < n and query[i + 1] in "\"'"):
            tok, i = _read_string(query, i)
            tokens.append(tok)
            continue
        if ch in _DIGITS or (ch == "." and i + 1 < n and query[i + 1] in _DIGITS):
            tok, i = _read_number(query, i)
            tokens.append(tok)
            continue
        m = _IDENT.match(query, i)
        if m:
            word = m.group(0)
            end = m.end()
            if word == "project" and (v := _PROJECT_VARIANT.match(query, end)):
                word, end = word + v.group(0), v.end()
            if word == "datetime":
                j = end
                while j < n and query[j].isspace():
                    j += 1
                if j < n and query[j] == "(":
                    close = query.find(")", j)
                    if close < 0:
                        raise KqlError("unterminated datetime(...) literal", i, word)
                    tokens.append(Token("datetime", query[i : close + 1], query[j + 1 : close].strip(), i))
                    i = close + 1
                    continue
            tokens.append(Token("ident", word, word, i))
            i = end
            continue
        for op in _OPERATORS:
            if query.startswith(op, i):
                tokens.append(Token("op", op, op, i))
                i += len(op)
                break
        else:
            raise KqlError("unexpected character", i, ch)
    tokens.append(Token("eof", "<end of query>", None, n))
    return tokens


def _read_string(query: str, i: int) -> tuple[Token, int]:
    start = i
    verbatim = query[i] == "@"
    if verbatim:
        i += 1
    quote = query[i]
    i += 1
    out: list[str] = []
    while i < len(query):
        ch = query[i]
        if ch == quote:
            text = query[start : i + 1]
            return Token("string", text, "".join(out), start), i + 1
        if ch == "\n":
            break
        if ch == "\\" and not verbatim:
            if i + 1 >= len(query):
                break
            nxt = query[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", query[i + 2 : i + 6]):
                out.append(chr(int(query[i + 2 : i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise KqlError("unsupported escape in string literal", i, "\\" + nxt)
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise KqlError("unterminated string literal", start, query[start : start + 20])


def _read_number(query: str, i: int) -> tuple[Token, int]:
    m = _NUMBER.match(query, i)
    assert m is not None
    text = m.group(0)
    end = m.end()
    unit = _IDENT.match(query, end)
    if unit:
        name = unit.group(0)
        if name not in _UNITS:
            raise KqlError("unknown number suffix", i, text + name)
        return Token("timespan", text + name, float(text) * _UNITS[name], i), unit.end()
    if "." in text or "e" in text or "E" in text:
        return Token("real", text, float(text), i), end
    return Token("int", text, int(text), i), end


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    """A compiled scalar expression: a row -> value function and its static KQL type."""

    fn: Fn
    type: str
    constant: bool = False  # fn ignores the row; fn(None) is the value


def _const(value: Any, typ: str) -> Expr:
    return Expr(lambda _row: value, typ, constant=True)


def to_string(value: Any) -> str:
    """KQL ``tostring``: null is ``""``, dynamic is compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.timedelta):
        return format_timespan(value)
    if isinstance(value, (int, float)):
        return repr(value)
    return dumps_dynamic(value)


def _to_integer(value: Any, bounds: tuple[int, int]) -> int | None:
    result: int | None = None
    if isinstance(value, bool):
        result = int(value)
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float):
        result = int(value) if math.isfinite(value) else None
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            result = int(number) if math.isfinite(number) else None
    if result is None or not bounds[0] <= result <= bounds[1]:
        return None
    return result


def to_real(value: Any) -> float | None:
    """KQL ``toreal``; non-finite results become null because the table cannot hold them."""
    number: float | None = None
    if isinstance(value, bool):
        number = float(value)
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    return number if number is not None and math.isfinite(number) else None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    return None


def to_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return parse_datetime(value)
    return None


def parse_json(value: Any) -> Any:
    """KQL ``parse_json``: a string that is not JSON stays the original string."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_empty(value: Any) -> bool:
    return value is None or value == ""


def _now(offset: Any = None) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now + offset if isinstance(offset, dt.timedelta) else now


def _ago(span: Any) -> dt.datetime | None:
    return _now() - span if isinstance(span, dt.timedelta) else None


def _substring(text: Any, start: Any, length: Any = None) -> str | None:
    s = to_string(text)
    if not isinstance(start, int) or isinstance(start, bool):
        return None
    start = max(start, 0)
    if length is None:
        return s[start:]
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        return None
    return s[start : start + length]


def _strlen(value: Any) -> int:
    return len(to_string(value))


def _coalesce(*values: Any) -> Any:
    for value in values:
        if not _is_empty(value):
            return value
    return None


@dataclass(frozen=True)
class _Func:
    min_args: int
    max_args: int
    result: Callable[[list[str]], str]
    impl: Callable[..., Any]
    lazy: bool = False  # impl receives the row and arg functions (iff)


def _fixed(typ: str) -> Callable[[list[str]], str]:
    return lambda _args: typ


def _first_concrete(args: list[str]) -> str:
    for typ in args:
        if typ != "dynamic":
            return typ
    return "dynamic"


def _iff(row: Row, cond: Fn, then: Fn, other: Fn) -> Any:
    return then(row) if cond(row) is True else other(row)


_MANY = 64
FUNCTIONS: dict[str, _Func] = {
    "tostring": _Func(1, 1, _fixed("string"), to_string),
    "toint": _Func(1, 1, _fixed("int"), lambda v: _to_integer(v, _INT32)),
    "tolong": _Func(1, 1, _fixed("long"), lambda v: _to_integer(v, _INT64)),
    "toreal": _Func(1, 1, _fixed("real"), to_real),
    "todouble": _Func(1, 1, _fixed("real"), to_real),
    "tobool": _Func(1, 1, _fixed("boolean"), to_bool),
    "toboolean": _Func(1, 1, _fixed("boolean"), to_bool),
    "todatetime": _Func(1, 1, _fixed("datetime"), to_datetime),
    "todynamic": _Func(1, 1, _fixed("dynamic"), parse_json),
    "parse_json": _Func(1, 1, _fixed("dynamic"), parse_json),
    "now": _Func(0, 1, _fixed("datetime"), _now),
    "ago": _Func(1, 1, _fixed("datetime"), _ago),
    "isempty": _Func(1, 1, _fixed("boolean"), _is_empty),
    "isnotempty": _Func(1, 1, _fixed("boolean"), lambda v: not _is_empty(v)),
    "isnull": _Func(1, 1, _fixed("boolean"), lambda v: v is None),
    "isnotnull": _Func(1, 1, _fixed("boolean"), lambda v: v is not None),
    "strcat": _Func(1, _MANY, _fixed("string"), lambda *v: "".join(to_string(x) for x in v)),
    "tolower": _Func(1, 1, _fixed("string"), lambda v: to_string(v).lower()),
    "toupper": _Func(1, 1, _fixed("string"), lambda v: to_string(v).upper()),
    "strlen": _Func(1, 1, _fixed("long"), _strlen),
    "substring": _Func(2, 3, _fixed("string"), _substring),
    "coalesce": _Func(1, _MANY, _first_concrete, _coalesce),
    "iff": _Func(3, 3, lambda a: _first_concrete(a[1:]), _iff, lazy=True),
    "iif": _Func(3, 3, lambda a: _first_concrete(a[1:]), _iff, lazy=True),
    "not": _Func(1, 1, _fixed("boolean"), lambda v: None if v is None else not v),
}
_TYPED_NULLS = {
    "dynamic": "dynamic",
    "string": "string",
    "int": "int",
    "long": "long",
    "real": "real",
    "double": "real",
    "bool": "boolean",
    "boolean": "boolean",
}


def _safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn runtime type errors into null, like KQL does for values of unexpected shape."""

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except (
            TypeError,
            ValueError,
            ZeroDivisionError,
            OverflowError,
            AttributeError,
            KeyError,
            IndexError,
        ):
            return None

    return wrapper


def _compare(op: str) -> Callable[[Any, Any], Any]:
    import operator

    pyop = {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }[op]

    def cmp(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        if isinstance(a, bool) != isinstance(b, bool):
            return None if op not in ("==", "!=") else op == "!="
        try:
            return bool(pyop(a, b))
        except TypeError:
            return None

    return cmp


def _has_term(text: str, term: str) -> bool:
    if not term:
        return True
    pattern = r"(?<![A-Za-z0-9_])" + re.escape(term) + r"(?![A-Za-z0-9_])"
    return re.search(pattern, text, re.IGNORECASE) is not None


_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "=~": lambda a, b: a.lower() == b.lower(),
    "!~": lambda a, b: a.lower() != b.lower(),
    "contains": lambda a, b: b.lower() in a.lower(),
    "!contains": lambda a, b: b.lower() not in a.lower(),
    "contains_cs": lambda a, b: b in a,
    "!contains_cs": lambda a, b: b not in a,
    "has": _has_term,
    "!has": lambda a, b: not _has_term(a, b),
    "startswith": lambda a, b: a.lower().startswith(b.lower()),
    "!startswith": lambda a, b: not a.lower().startswith(b.lower()),
    "endswith": lambda a, b: a.lower().endswith(b.lower()),
    "!endswith": lambda a, b: not a.lower().endswith(b.lower()),
}
_NEGATABLE = {"contains", "contains_cs", "has", "startswith", "endswith", "in"}


def _arith_type(op: str, a: str, b: str) -> str | None:
    if "dynamic" in (a, b):
        return "dynamic"
    if a in NUMERIC and b in NUMERIC:
        if op == "/" and a != "real" and b != "real":
            return "long"
        rank = max(_NUM_RANK[a], _NUM_RANK[b])
        return "real" if rank == 2 else "long"
    table = {
        ("-", "datetime", "datetime"): "timespan",
        ("+", "datetime", "timespan"): "datetime",
        ("-", "datetime", "timespan"): "datetime",
        ("+", "timespan", "datetime"): "datetime",
        ("+", "timespan", "timespan"): "timespan",
        ("-", "timespan", "timespan"): "timespan",
        ("/", "timespan", "timespan"): "real",
    }
    if (op, a, b) in table:
        return table[(op, a, b)]
    if op in ("*", "/") and a == "timespan" and b in NUMERIC:
        return "timespan"
    if op == "*" and b == "timespan" and a in NUMERIC:
        return "timespan"
    return None


def _arith(op: str) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if a is None or b is None or isinstance(a, (bool, str)) or isinstance(b, (bool, str)):
            return None
        if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
            return None
        if op == "+":
            result = a + b
        elif op == "-":
            result = a - b
        elif op == "*":
            result = a * b
        elif op == "/":
            if isinstance(a, int) and isinstance(b, int):
                if b == 0:
                    return None
                quotient = abs(a) // abs(b)
                result = quotient if (a >= 0) == (b >= 0) else -quotient
            else:
                result = a / b
        else:  # % with the sign of the dividend, as in KQL/C#
            if isinstance(a, int) and isinstance(b, int):
                if b == 0:
                    return None
                result = abs(a) % abs(b) * (1 if a >= 0 else -1)
            else:
                result = math.fmod(a, b)
        if isinstance(result, float) and not math.isfinite(result):
            return None
        if isinstance(result, int) and not _INT64[0] <= result <= _INT64[1]:
            return None
        return result

    return _safe(run)


def _and(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    return None


def _or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return None


def _member(base: Any, key: Any) -> Any:
    if isinstance(base, dict) and isinstance(key, str):
        return base.get(key)
    is_index = isinstance(key, int) and not isinstance(key, bool)
    if isinstance(base, list) and is_index and -len(base) <= key < len(base):
        return base[key]
    return None


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the token list, producing compiled stages directly."""

    def __init__(self, query: str, columns: Sequence[tuple[str, str]]) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0
        self.schema: dict[str, str] = dict(columns)
        # the 'where' predicates while every stage only filters rows or keeps/drops columns
        # by name (values pass through unchanged); None once a stage computes or renames
        self.filters: list[Fn] | None = []

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def _advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def _is_op(self, text: str) -> bool:
        return self.tok.kind == "op" and self.tok.text == text

    def _is_word(self, text: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text == text

    def _expect_op(self, text: str) -> Token:
        if not self._is_op(text):
            self._fail(f"expected {text!r}")
        return self._advance()

    def _expect_name(self, what: str) -> Token:
        if self.tok.kind != "ident" or self.tok.text in ("and", "or", "true", "false", "null"):
            self._fail(f"expected {what}")
        return self._advance()

    def _fail(self, message: str, tok: Token | None = None) -> None:
        tok = tok or self.tok
        raise KqlError(message, tok.pos, tok.text)

    # query
    def parse(self) -> list[Stage]:
        if not self._is_word("source"):
            self._fail("a transformation must start with 'source'")
        self._advance()
        stages: list[Stage] = []
        while self._is_op("|"):
            self._advance()
            stages.append(self._operator())
        if self.tok.kind != "eof":
            self._fail("expected '|' or end of query")
        return stages

    def _operator(self) -> Stage:
        tok = self.tok
        if tok.kind != "ident":
            self._fail("expected a query operator")
        name = tok.text
        self._advance()
        if name in ("where", "filter"):
            return self._where()
        if name == "extend":
            return self._extend()
        if name == "project":
            return self._project()
        if name == "project-away":
            return self._project_away()
        if name == "project-rename":
            return self._project_rename()
        self._fail(
            "unsupported query operator (supported: where, extend, project, project-away, project-rename)",
            tok,
        )
        raise AssertionError  # unreachable

    def _where(self) -> Stage:
        start = self.tok
        pred = self._expr()
        if pred.type not in ("boolean", "dynamic"):
            self._fail(f"'where' needs a boolean predicate, got {pred.type}", start)
        fn = pred.fn
        if self.filters is not None:
            self.filters.append(fn)
        return lambda row: row if fn(row) is True else None

    def _assignments(self, operator: str) -> list[tuple[str, Expr]]:
        items: list[tuple[str, Expr]] = []
        while True:
            name = self._expect_name(f"a column name in '{operator}'")
            if not self._is_op("="):
                self._fail(f"'{operator}' needs 'Name = expression'")
            self._advance()
            expr = self._expr()
            items.append((name.text, expr))
            # later assignments in the same extend may use earlier ones
            self.schema[name.text] = expr.type
            if not self._is_op(","):
                return items
            self._advance()

    def _extend(self) -> Stage:
        self.filters = None
        items = self._assignments("extend")
        compiled = [(name, expr.fn) for name, expr in items]

        def stage(row: Row) -> Row:
            out = dict(row)
            for name, fn in compiled:
                out[name] = fn(out)
            return out

        return stage

    def _project(self) -> Stage:
        old = dict(self.schema)
        new: dict[str, str] = {}
        plan: list[tuple[str, str | None, Fn | None]] = []  # (name, source column, expression)
        while True:
            name_tok = self._expect_name("a column name in 'project'")
            name = name_tok.text
            if name in new:
                self._fail("column projected twice", name_tok)
            if self._is_op("="):
                self._advance()
                saved, self.schema = self.schema, old
                expr = self._expr()
                self.schema = saved
                plan.append((name, None, expr.fn))
                new[name] = expr.type
            else:
                if name not in old:
                    self._unknown_column(name_tok, old)
                plan.append((name, name, None))
                new[name] = old[name]
            if not self._is_op(","):
                break
            self._advance()
        self.schema = new

        if any(fn is not None for _name, _src, fn in plan):
            self.filters = None
        else:  # only column names: no expression to run
            names = tuple(name for name, _src, _fn in plan)

            def columns_only(row: Row) -> Row:
                return dict(zip(names, map(row.get, names), strict=True))

            return columns_only

        def stage(row: Row) -> Row:
            return {name: (row.get(src) if fn is None else fn(row)) for name, src, fn in plan}

        return stage

    def _project_away(self) -> Stage:
        names: list[str] = []
        while True:
            tok = self._expect_name("a column name in 'project-away'")
            if tok.text not in self.schema:
                self._unknown_column(tok, self.schema)
            names.append(tok.text)
            if not self._is_op(","):
                break
            self._advance()
        for name in names:
            self.schema.pop(name, None)
        keep = tuple(self.schema)
        return lambda row: {name: row.get(name) for name in keep}

    def _project_rename(self) -> Stage:
        self.filters = None
        renames: dict[str, str] = {}
        while True:
            new_tok = self._expect_name("a new column name in 'project-rename'")
            self._expect_op("=")
            old_tok = self._expect_name("an existing column name in 'project-rename'")
            if old_tok.text not in self.schema:
                self._unknown_column(old_tok, self.schema)
            renames[old_tok.text] = new_tok.text
            if not self._is_op(","):
                break
            self._advance()
        old_names = list(self.schema)
        self.schema = {renames.get(name, name): typ for name, typ in self.schema.items()}
        pairs = tuple((renames.get(name, name), name) for name in old_names)
        return lambda row: {new: row.get(old) for new, old in pairs}

    def _unknown_column(self, tok: Token, schema: dict[str, str]) -> None:
        known = ", ".join(schema) or "none"
        self._fail(f"unknown column {tok.text!r} (columns here: {known})", tok)

    # expressions, lowest precedence first
    def _expr(self) -> Expr:
        return self._or()

    def _or(self) -> Expr:
        left = self._and()
        while self._is_word("or"):
            tok = self._advance()
            right = self._and()
            left = self._logical(_or, left, right, tok)
        return left

    def _and(self) -> Expr:
        left = self._comparison()
        while self._is_word("and"):
            tok = self._advance()
            right = self._comparison()
            left = self._logical(_and, left, right, tok)
        return left

    def _logical(self, op: Callable[[Any, Any], Any], left: Expr, right: Expr, tok: Token) -> Expr:
        for side in (left, right):
            if side.type not in ("boolean", "dynamic"):
                self._fail(f"'{tok.text}' needs boolean operands, got {side.type}", tok)
        lf, rf = left.fn, right.fn
        return Expr(lambda row: op(lf(row), rf(row)), "boolean")

    def _comparison(self) -> Expr:
        left = self._additive()
        tok = self.tok
        op: str | None = None
        symbol = tok.kind == "op" and tok.text in ("==", "!=", "<", "<=", ">", ">=", "=~", "!~")
        word = tok.kind == "ident" and (tok.text in _STRING_OPS or tok.text == "in")
        if symbol or word:
            op = tok.text
            self._advance()
        elif tok.kind == "op" and tok.text == "!" and self._peek().kind == "ident":
            word = self._peek().text
            if word not in _NEGATABLE:
                self._fail("unsupported operator", self._peek())
            self._advance()
            self._advance()
            op = "!" + word
        if op is None:
            return left
        if op in ("in", "!in"):
            return self._in(left, op == "!in")
        right = self._additive()
        lf, rf = left.fn, right.fn
        if op in _STRING_OPS:
            sop = _STRING_OPS[op]
            return Expr(_safe(lambda row: sop(to_string(lf(row)), to_string(rf(row)))), "boolean")
        self._check_comparable(op, left, right, tok)
        cmp = _compare(op)
        if right.constant:  # Level != "trace": one call fewer per row
            value = rf(None)
            return Expr(lambda row: cmp(lf(row), value), "boolean")
        return Expr(lambda row: cmp(lf(row), rf(row)), "boolean")

    def _check_comparable(self, op: str, left: Expr, right: Expr, tok: Token) -> None:
        a, b = left.type, right.type
        if "dynamic" in (a, b) or a == b or (a in NUMERIC and b in NUMERIC):
            return
        self._fail(f"cannot compare {a} with {b} using {op!r}", tok)

    def _in(self, left: Expr, negate: bool) -> Expr:
        self._expect_op("(")
        values: list[Expr] = []
        while True:
            values.append(self._expr())
            if not self._is_op(","):
                break
            self._advance()
        self._expect_op(")")
        lf = left.fn
        fns = [v.fn for v in values]

        def member(row: Row) -> Any:
            value = lf(row)
            found = any(value == fn(row) for fn in fns)
            return found != negate

        return Expr(_safe(member), "boolean")

    def _additive(self) -> Expr:
        left = self._multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            tok = self._advance()
            right = self._multiplicative()
            left = self._binary(tok, left, right)
        return left

    def _multiplicative(self) -> Expr:
        left = self._unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "%"):
            tok = self._advance()
            right = self._unary()
            left = self._binary(tok, left, right)
        return left

    def _binary(self, tok: Token, left: Expr, right: Expr) -> Expr:
        typ = _arith_type(tok.text, left.type, right.type)
        if typ is None:
            hint = " (use strcat() to join strings)" if "string" in (left.type, right.type) else ""
            self._fail(f"operator {tok.text!r} does not apply to {left.type} and {right.type}{hint}", tok)
        run = _arith(tok.text)
        lf, rf = left.fn, right.fn
        return Expr(lambda row: run(lf(row), rf(row)), typ or "dynamic")

    def _unary(self) -> Expr:
        if self._is_op("-") or self._is_op("+"):
            tok = self._advance()
            operand = self._unary()
            if operand.type not in (*NUMERIC, "timespan", "dynamic"):
                self._fail(f"unary {tok.text!r} does not apply to {operand.type}", tok)
            if tok.text == "+":
                return operand
            neg = _arith("*")
            fn = operand.fn
            return Expr(lambda row: neg(fn(row), -1), operand.type)
        if self._is_op("!"):
            self._fail("use not(...) for negation")
        return self._postfix()

    def _postfix(self) -> Expr:
        expr = self._primary()
        while self._is_op(".") or self._is_op("["):
            tok = self.tok
            if expr.type != "dynamic":
                self._fail(f"member access needs a dynamic value, got {expr.type}", tok)
            self._advance()
            base = expr.fn
            if tok.text == ".":
                key = self._expect_name("a property name after '.'").text
                expr = Expr(lambda row, b=base, k=key: _member(b(row), k), "dynamic")
            else:
                index = self._expr()
                self._expect_op("]")
                kf = index.fn
                expr = Expr(lambda row, b=base, k=kf: _member(b(row), k(row)), "dynamic")
        return expr

    def _primary(self) -> Expr:
        tok = self.tok
        if tok.kind in ("int", "real", "string", "timespan"):
            self._advance()
            typ = {"int": "long", "real": "real", "string": "string", "timespan": "timespan"}[tok.kind]
            return _const(tok.value, typ)
        if tok.kind == "datetime":
            self._advance()
            if tok.value == "null":
                return _const(None, "datetime")
            value = parse_datetime(tok.value)
            if value is None:
                self._fail("invalid datetime literal", tok)
            return _const(value, "datetime")
        if self._is_op("("):
            self._advance()
            inner = self._expr()
            self._expect_op(")")
            return inner
        if tok.kind != "ident":
            self._fail("expected an expression")
        name = tok.text
        if name in ("true", "false"):
            self._advance()
            return _const(name == "true", "boolean")
        if name == "null":
            self._advance()
            return _const(None, "dynamic")
        if self._peek().kind == "op" and self._peek().text == "(":
            return self._call()
        if name in ("and", "or"):
            self._fail("expected an expression")
        self._advance()
        if name not in self.schema:
            self._unknown_column(tok, self.schema)
        typ = self.schema[name]
        if typ == "string":
            return Expr(lambda row: v if (v := row.get(name)) is not None else "", typ)
        return Expr(lambda row: row.get(name), typ)

    def _call(self) -> Expr:
        name_tok = self._advance()
        name = name_tok.text
        self._expect_op("(")
        if name in _TYPED_NULLS and name not in FUNCTIONS:
            if not self._is_word("null"):
                self._fail(f"only {name}(null) literals are supported")
            self._advance()
            self._expect_op(")")
            return _const(None, _TYPED_NULLS[name])
        func = FUNCTIONS.get(name)
        if func is None:
            supported = ", ".join(sorted(FUNCTIONS))
            self._fail(f"unsupported function (supported: {supported})", name_tok)
            raise AssertionError  # unreachable
        args: list[Expr] = []
        if not self._is_op(")"):
            while True:
                args.append(self._expr())
                if not self._is_op(","):
                    break
                self._advance()
        self._expect_op(")")
        if not func.min_args <= len(args) <= func.max_args:
            want = (
                str(func.min_args) if func.min_args == func.max_args else f"{func.min_args}..{func.max_args}"
            )
            self._fail(f"{name}() takes {want} argument(s), got {len(args)}", name_tok)
        typ = func.result([a.type for a in args])
        fns = [a.fn for a in args]
        if func.lazy:
            impl = func.impl
            return Expr(_safe(lambda row: impl(row, *fns)), typ)
        impl = _safe(func.impl)
        if not fns:
            return Expr(lambda _row: impl(), typ)
        if len(fns) == 1:
            only = fns[0]
            return Expr(lambda row: impl(only(row)), typ)
        return Expr(lambda row: impl(*(f(row) for f in fns)), typ)


# --------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Transform:
    """A compiled ``transformKql``: apply it to one row, get the output row or None (filtered)."""

    query: str
    input_columns: tuple[tuple[str, str], ...]
    output_columns: tuple[tuple[str, str], ...]
    stages: tuple[Stage, ...]
    # When no stage computes a value or renames a column: the 'where' predicates, in order.
    # Then apply(row) is None unless each predicate(row) is True, else it holds row's values
    # of the output columns, the same objects (predicates only read columns still present).
    filters: tuple[Fn, ...] | None = None

    def apply(self, row: Row) -> Row | None:
        out: Row | None = row
        for stage in self.stages:
            out = stage(out)
            if out is None:
                return None
        return out


def compile_transform(query: str, columns: Sequence[tuple[str, str]]) -> Transform:
    """Compile ``query`` for an input stream with ``columns`` ((name, type) pairs)."""
    parser = _Parser(query, columns)
    stages = parser.parse()
    filters = None if parser.filters is None else tuple(parser.filters)
    return Transform(query, tuple(columns), tuple(parser.schema.items()), tuple(stages), filters)
