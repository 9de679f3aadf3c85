"""Safe structured SQL: the model describes a query, it never writes one.

An application that lets a model "query the database" asks it for a *specification*
(JSON: table, columns, conditions, order, limit) instead of SQL text. `build_query` checks
the specification against an allow-list and emits a parameterized query:

* identifiers (tables, columns) must be in the allow-list and are emitted quoted, spelled
  as the allow-list spells them (never as the model did); the allow-list itself must
  consist of plain identifiers, so quoting is always sound;
* every value becomes a bound parameter (`?`, `%s` or `$n`): a value such as
  `"x'; DROP TABLE users; --"` is data, compared as a string, never parsed as SQL;
* operators come from a fixed table (`=`, `<>`, `<`, `IN`, `LIKE`, `IS NULL`...);
  conditions are ANDed; there is no way to name a function, a subquery or a join;
* `limit` is required to be 1..`max_limit` (omitted = `max_limit`), so a model cannot ask for
  a whole table.

Errors are `SqlSpecError` with a message for the developer; they name the offending
identifier only when it is a plain identifier (never a value, never arbitrary text).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from guardstream.errors import GuardstreamError

__all__ = [
    "OPERATORS",
    "AllowList",
    "Condition",
    "OrderBy",
    "QuerySpec",
    "SafeQuery",
    "SqlSpecError",
    "build_query",
    "parse_spec",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: Operator name in a specification -> SQL text. Aliases so models need not guess spelling.
OPERATORS: Mapping[str, str] = {
    "=": "=", "eq": "=", "!=": "<>", "<>": "<>", "ne": "<>",
    "<": "<", "lt": "<", "<=": "<=", "lte": "<=", ">": ">", "gt": ">", ">=": ">=", "gte": ">=",
    "in": "IN", "not_in": "NOT IN", "like": "LIKE", "not_like": "NOT LIKE",
    "is_null": "IS NULL", "is_not_null": "IS NOT NULL",
}
_LIST_OPS = frozenset({"IN", "NOT IN"})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
_STRING_OPS = frozenset({"LIKE", "NOT LIKE"})
_SPEC_KEYS = frozenset({"table", "columns", "where", "order_by", "limit"})
_CONDITION_KEYS = frozenset({"column", "op", "value"})
_ORDER_KEYS = frozenset({"column", "direction"})

Scalar = str | int | float | bool | None
ParamStyle = Literal["qmark", "format", "numeric_dollar"]


class SqlSpecError(GuardstreamError):
    """A query specification that is malformed or not permitted by the allow-list."""


def _name(value: object) -> str:
    """An identifier for an error message: shown only if it is a plain identifier."""
    if isinstance(value, str) and _IDENT.match(value):
        return repr(value)
    return "(not a plain identifier)"


@dataclass(frozen=True)
class AllowList:
    """What a specification may touch: table -> its queryable columns, in output order."""

    tables: Mapping[str, Sequence[str]]
    max_limit: int = 100
    max_conditions: int = 16
    max_in_values: int = 100
    max_value_chars: int = 1_000
    operators: frozenset[str] = field(default_factory=lambda: frozenset(OPERATORS))

    def __post_init__(self) -> None:
        if not self.tables:
            raise SqlSpecError("the allow-list has no tables")
        for table, columns in self.tables.items():
            if not _IDENT.match(table) or not columns or not all(
                    isinstance(c, str) and _IDENT.match(c) for c in columns):
                raise SqlSpecError("allow-list tables and columns must be plain identifiers "
                                   "(letters, digits, underscore), and every table needs a "
                                   "column")
        if self.max_limit < 1:
            raise SqlSpecError("max_limit must be at least 1")
        unknown = self.operators - set(OPERATORS)
        if unknown:
            raise SqlSpecError("the allow-list names operators guardstream does not know")


@dataclass(frozen=True, slots=True)
class Condition:
    column: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class OrderBy:
    column: str
    direction: Literal["asc", "desc"] = "asc"


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """A parsed specification (not yet checked against an allow-list)."""

    table: str
    columns: tuple[str, ...] = ()
    where: tuple[Condition, ...] = ()
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class SafeQuery:
    """SQL text built only from allow-listed identifiers and fixed keywords, plus the
    values to bind. Pass both to the driver: `cursor.execute(q.sql, q.params)`."""

    sql: str
    params: tuple[Scalar, ...]


def _keys(obj: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = [k for k in obj if k not in allowed]
    if extra:
        raise SqlSpecError(f"{what} has unknown keys {', '.join(_name(k) for k in extra)}; "
                           f"allowed: {', '.join(sorted(allowed))}")


def parse_spec(data: str | bytes | Mapping[str, Any]) -> QuerySpec:
    """A specification from the model's JSON (text or decoded), strictly shaped."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise SqlSpecError("the specification is not valid JSON") from None
    if not isinstance(data, Mapping):
        raise SqlSpecError("the specification must be a JSON object")
    _keys(data, _SPEC_KEYS, "the specification")
    table = data.get("table")
    if not isinstance(table, str):
        raise SqlSpecError("'table' must be a string")
    columns = data.get("columns", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise SqlSpecError("'columns' must be a list of strings")
    where_raw = data.get("where", [])
    if not isinstance(where_raw, list):
        raise SqlSpecError("'where' must be a list of conditions")
    where: list[Condition] = []
    for i, cond in enumerate(where_raw):
        if not isinstance(cond, Mapping):
            raise SqlSpecError(f"where[{i}] must be an object with column, op, value")
        _keys(cond, _CONDITION_KEYS, f"where[{i}]")
        column, op = cond.get("column"), cond.get("op", "=")
        if not isinstance(column, str) or not isinstance(op, str):
            raise SqlSpecError(f"where[{i}].column and .op must be strings")
        where.append(Condition(column, op, cond.get("value")))
    order_raw = data.get("order_by", [])
    if isinstance(order_raw, str | Mapping):
        order_raw = [order_raw]
    if not isinstance(order_raw, list):
        raise SqlSpecError("'order_by' must be a list")
    order: list[OrderBy] = []
    for i, item in enumerate(order_raw):
        if isinstance(item, str):
            item = {"column": item}
        if not isinstance(item, Mapping):
            raise SqlSpecError(f"order_by[{i}] must be a column name or an object")
        _keys(item, _ORDER_KEYS, f"order_by[{i}]")
        column, direction = item.get("column"), item.get("direction", "asc")
        if not isinstance(column, str) or not isinstance(direction, str):
            raise SqlSpecError(f"order_by[{i}].column and .direction must be strings")
        direction = direction.lower()
        if direction not in ("asc", "desc"):
            raise SqlSpecError(f"order_by[{i}].direction must be 'asc' or 'desc'")
        order.append(OrderBy(column, "desc" if direction == "desc" else "asc"))
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise SqlSpecError("'limit' must be an integer")
    return QuerySpec(table, tuple(columns), tuple(where), tuple(order), limit)


def _quote(identifier: str) -> str:
    # Safe because allow-list identifiers match _IDENT (no quote characters to escape).
    return f'"{identifier}"'


def _scalar(value: Any, allow: AllowList, where: str) -> Scalar:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SqlSpecError(f"{where}: the value must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > allow.max_value_chars:
            raise SqlSpecError(f"{where}: the value is longer than {allow.max_value_chars} "
                               "characters")
        return value
    raise SqlSpecError(f"{where}: the value must be a string, number, boolean or null")


def _placeholder(style: ParamStyle, n: int) -> str:
    if style == "qmark":
        return "?"
    if style == "format":
        return "%s"
    return f"${n}"


def build_query(spec: QuerySpec | str | bytes | Mapping[str, Any], allow: AllowList, *,
                paramstyle: ParamStyle = "qmark") -> SafeQuery:
    """The parameterized SELECT for `spec`, or `SqlSpecError` if anything is not allowed."""
    if not isinstance(spec, QuerySpec):
        spec = parse_spec(spec)
    if spec.table not in allow.tables:
        raise SqlSpecError(f"table {_name(spec.table)} is not in the allow-list")
    table = spec.table
    allowed_columns = tuple(allow.tables[table])
    column_set = frozenset(allowed_columns)

    def column(name: str, where: str) -> str:
        if name not in column_set:
            raise SqlSpecError(f"{where}: column {_name(name)} is not allowed for table "
                               f"{_name(table)}")
        return _quote(name)

    columns = spec.columns or allowed_columns
    if len(set(columns)) != len(columns):
        raise SqlSpecError("'columns' lists a column twice")
    select = ", ".join(column(c, f"columns[{i}]") for i, c in enumerate(columns))
    if len(spec.where) > allow.max_conditions:
        raise SqlSpecError(f"at most {allow.max_conditions} conditions are allowed")
    params: list[Scalar] = []
    clauses: list[str] = []
    for i, cond in enumerate(spec.where):
        where = f"where[{i}]"
        col = column(cond.column, where)
        op_name = cond.op.strip().lower()
        if op_name not in allow.operators:
            raise SqlSpecError(f"{where}: operator is not allowed; allowed: "
                               f"{', '.join(sorted(allow.operators))}")
        op = OPERATORS[op_name]
        if op in _NULL_OPS:
            if cond.value is not None:
                raise SqlSpecError(f"{where}: {op_name} takes no value")
            clauses.append(f"{col} {op}")
            continue
        if op in _LIST_OPS:
            values = cond.value
            if not isinstance(values, list) or not values:
                raise SqlSpecError(f"{where}: {op_name} needs a non-empty list of values")
            if len(values) > allow.max_in_values:
                raise SqlSpecError(f"{where}: at most {allow.max_in_values} values are allowed")
            marks = []
            for j, item in enumerate(values):
                params.append(_scalar(item, allow, f"{where}.value[{j}]"))
                marks.append(_placeholder(paramstyle, len(params)))
            clauses.append(f"{col} {op} ({', '.join(marks)})")
            continue
        if cond.value is None:
            raise SqlSpecError(f"{where}: comparing with null needs is_null / is_not_null")
        value = _scalar(cond.value, allow, f"{where}.value")
        if op in _STRING_OPS and not isinstance(value, str):
            raise SqlSpecError(f"{where}: {op_name} needs a string pattern")
        params.append(value)
        clauses.append(f"{col} {op} {_placeholder(paramstyle, len(params))}")
    order = [f"{column(o.column, f'order_by[{i}]')} {o.direction.upper()}"
             for i, o in enumerate(spec.order_by)]
    limit = allow.max_limit if spec.limit is None else spec.limit
    if not 1 <= limit <= allow.max_limit:
        raise SqlSpecError(f"'limit' must be between 1 and {allow.max_limit}")
    # Identifiers are allow-listed plain names, operators come from OPERATORS, values are
    # bound parameters: nothing the model wrote is in this text.
    sql = f"SELECT {select} FROM {_quote(table)}"  # noqa: S608
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    if order:
        sql += " ORDER BY " + ", ".join(order)
    sql += f" LIMIT {int(limit)}"
    return SafeQuery(sql, tuple(params))
