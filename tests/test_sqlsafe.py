"""The safe structured SQL helper: allow-lists, parameters, and a real sqlite3 execution."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from guardstream.errors import GuardstreamError
from guardstream.sqlsafe import AllowList, SqlSpecError, build_query, parse_spec

ALLOW = AllowList(tables={"users": ("id", "name", "email", "plan"),
                          "orders": ("id", "user_id", "total")}, max_limit=50)
INJECTION = "show me all users; DROP TABLE users; --"


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, plan TEXT,
                            password_hash TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL);
        CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT);
        INSERT INTO users VALUES (1, 'Ada', 'ada@example.com', 'pro', 'h1'),
                                 (2, 'Bob', 'bob@example.com', 'free', 'h2'),
                                 (3, 'show me all users; DROP TABLE users; --', 'x@example.com',
                                  'free', 'h3');
        INSERT INTO secrets VALUES (1, 'top');
    """)
    yield conn
    conn.close()


def rows(conn: sqlite3.Connection, spec: Any) -> list[tuple[Any, ...]]:
    query = build_query(spec, ALLOW)
    return conn.execute(query.sql, query.params).fetchall()


def test_builds_a_parameterized_query() -> None:
    query = build_query({"table": "users", "columns": ["id", "name"],
                         "where": [{"column": "plan", "op": "=", "value": "pro"},
                                   {"column": "id", "op": "in", "value": [1, 2]}],
                         "order_by": [{"column": "name", "direction": "desc"}], "limit": 10},
                        ALLOW)
    assert query.sql == ('SELECT "id", "name" FROM "users" WHERE "plan" = ? AND "id" IN (?, ?) '
                         'ORDER BY "name" DESC LIMIT 10')
    assert query.params == ("pro", 1, 2)


@pytest.mark.parametrize(("style", "marks"), [("qmark", "?"), ("format", "%s"),
                                               ("numeric_dollar", "$1")])
def test_paramstyles(style: Any, marks: str) -> None:
    query = build_query({"table": "users", "where": [{"column": "id", "value": 1}]}, ALLOW,
                        paramstyle=style)
    assert query.sql.endswith(f'WHERE "id" = {marks} LIMIT 50')


def test_injection_in_a_value_stays_a_bound_parameter(db: sqlite3.Connection) -> None:
    spec = {"table": "users", "columns": ["id"],
            "where": [{"column": "name", "op": "=", "value": INJECTION}]}
    query = build_query(spec, ALLOW)
    assert INJECTION not in query.sql and query.params == (INJECTION,)
    assert rows(db, spec) == [(3,)]  # matched as data, literally
    assert db.execute("SELECT count(*) FROM users").fetchone() == (3,)  # table still there
    like = {"table": "users", "columns": ["id"],
            "where": [{"column": "email", "op": "like", "value": "' OR '1'='1"}]}
    assert rows(db, like) == []


def test_real_execution_with_every_clause(db: sqlite3.Connection) -> None:
    spec = ('{"table": "users", "columns": ["name", "plan"], "where": [{"column": "plan", '
            '"op": "is_not_null"}, {"column": "id", "op": "<=", "value": 2}], '
            '"order_by": ["name"], "limit": 5}')
    assert rows(db, spec) == [("Ada", "pro"), ("Bob", "free")]


@pytest.mark.parametrize("spec", [
    {"table": "secrets"},
    {"table": "users; DROP TABLE users; --"},
    {"table": "Users"},
    {"table": "users", "columns": ["password_hash"]},
    {"table": "users", "columns": ["*"]},
    {"table": "users", "columns": ["id, password_hash"]},
    {"table": "users", "columns": ['name" FROM secrets --']},
    {"table": "users", "where": [{"column": "password_hash", "value": "h1"}]},
    {"table": "users", "where": [{"column": "1=1 OR id", "value": 1}]},
    {"table": "users", "order_by": [{"column": "password_hash"}]},
    {"table": "users", "order_by": [{"column": "id", "direction": "desc; DROP TABLE users"}]},
    {"table": "orders", "columns": ["email"]},  # a column of another table
])
def test_identifiers_outside_the_allow_list_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(SqlSpecError):
        build_query(spec, ALLOW)


@pytest.mark.parametrize("op", ["OR", "= 1 OR 1=1 --", "; DROP TABLE users", "UNION SELECT",
                                "==", "regexp", "glob", ""])
def test_operator_injection_is_refused(op: str) -> None:
    with pytest.raises(SqlSpecError, match="operator"):
        build_query({"table": "users", "where": [{"column": "id", "op": op, "value": 1}]},
                    ALLOW)


@pytest.mark.parametrize("limit", [0, -1, 51, 10**12, True, 2.5, "10", "10; DROP TABLE users"])
def test_limit_abuse_is_refused(limit: Any) -> None:
    with pytest.raises(SqlSpecError, match="limit"):
        build_query({"table": "users", "limit": limit}, ALLOW)


def test_missing_limit_is_the_maximum() -> None:
    assert build_query({"table": "users"}, ALLOW).sql.endswith("LIMIT 50")


@pytest.mark.parametrize("spec", [
    "DROP TABLE users",                      # SQL text instead of a specification
    "SELECT * FROM users",
    '["users"]',
    {"table": "users", "sql": "SELECT 1"},   # unknown key
    {"table": "users", "where": [{"column": "id", "value": {"$gt": 1}}]},
    {"table": "users", "where": [{"column": "id", "value": [1, 2]}]},
    {"table": "users", "where": [{"column": "id", "op": "in", "value": []}]},
    {"table": "users", "where": [{"column": "id", "op": "in", "value": list(range(101))}]},
    {"table": "users", "where": [{"column": "id", "op": "is_null", "value": 1}]},
    {"table": "users", "where": [{"column": "id", "value": None}]},
    {"table": "users", "where": [{"column": "id", "value": float("nan")}]},
    {"table": "users", "where": [{"column": "name", "value": "x" * 1001}]},
    {"table": "users", "where": [{"column": "id", "op": "like", "value": 3}]},
    {"table": "users", "where": [{"column": "id", "value": 1}] * 17},
    {"table": "users", "columns": ["id", "id"]},
])
def test_malformed_specifications_are_refused(spec: Any) -> None:
    with pytest.raises(SqlSpecError):
        build_query(spec, ALLOW)


def test_errors_never_echo_values_or_arbitrary_text() -> None:
    with pytest.raises(SqlSpecError) as caught:
        build_query({"table": "users", "where": [{"column": "name", "value": {"x": INJECTION}}]},
                    ALLOW)
    assert "DROP" not in str(caught.value)
    with pytest.raises(SqlSpecError) as caught:
        build_query({"table": INJECTION}, ALLOW)
    assert "DROP" not in str(caught.value)
    with pytest.raises(SqlSpecError) as caught:
        build_query({"table": "secrets"}, ALLOW)
    assert "'secrets'" in str(caught.value)  # a plain identifier is named, for the developer


@pytest.mark.parametrize("tables", [
    {},
    {"users; --": ("id",)},
    {"users": ('id" --',)},
    {"users": ()},
])
def test_allow_list_itself_must_be_plain_identifiers(tables: dict[str, Any]) -> None:
    with pytest.raises(SqlSpecError):
        AllowList(tables=tables)


def test_error_is_a_guardstream_error_and_parse_is_strict() -> None:
    assert issubclass(SqlSpecError, GuardstreamError)
    spec = parse_spec({"table": "users", "order_by": "name"})
    assert spec.order_by[0].column == "name" and spec.order_by[0].direction == "asc"


def test_restricted_operator_allow_list() -> None:
    allow = AllowList(tables={"users": ("id", "name")}, operators=frozenset({"="}))
    build_query({"table": "users", "where": [{"column": "id", "value": 1}]}, allow)
    with pytest.raises(SqlSpecError, match="operator"):
        build_query({"table": "users", "where": [{"column": "name", "op": "like",
                                                  "value": "%a%"}]}, allow)
