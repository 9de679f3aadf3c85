"""Structured output validation: valid answers pass, invalid ones name the path, not content."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guardstream.output import check_structured, requested_schema
from guardstream.output.structured import MAX_SCHEMA_BYTES


def js(schema: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


ORDER = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "price": {"type": "number", "minimum": 0}},
            "required": ["sku", "price"], "additionalProperties": False}},
        "total": {"type": "number"},
    },
    "required": ["items", "total"],
}


@pytest.mark.parametrize(("answer", "fmt"), [
    ('{"a": 1}', {"type": "json_object"}),
    ('  {"nested": {"x": [1, 2]}}\n', {"type": "json_object"}),
    ('{"items": [{"sku": "A-1", "price": 3.5}], "total": 3.5}', js(ORDER)),
    ("anything at all", None),
    ("anything at all", {"type": "text"}),
    ("[1, 2]", js({"type": "array", "items": {"type": "integer"}})),
])
def test_valid_answers(answer: str, fmt: dict[str, Any] | None) -> None:
    assert check_structured(answer, fmt) is None


@pytest.mark.parametrize(("answer", "fmt", "path"), [
    ("not json", {"type": "json_object"}, "line 1, column 1"),
    ("[1, 2]", {"type": "json_object"}, "not a JSON object"),
    ('{"items": [{"sku": "A-1", "price": "SECRET-CONTENT"}], "total": 1}', js(ORDER),
     "$.items[0].price (keyword 'type')"),
    ('{"items": [{"sku": "A-1", "price": -1}], "total": 1}', js(ORDER),
     "$.items[0].price (keyword 'minimum')"),
    ('{"items": [{"sku": "A-1"}], "total": 1}', js(ORDER), "missing 'price'"),
    ('{"items": [{"sku": "A", "price": 1, "SECRET-CONTENT": 2}], "total": 1}', js(ORDER),
     "$.items[0] (keyword 'additionalProperties')"),
    ('{"items": []}', js(ORDER), "missing 'total'"),
    ("[" * 5000 + "]" * 5000, {"type": "json_object"}, "deeper"),
])
def test_invalid_answers_name_the_path_not_the_content(answer: str, fmt: dict[str, Any],
                                                       path: str) -> None:
    problem = check_structured(answer, fmt)
    assert problem is not None and problem.reason == "invalid_structured_output"
    assert path in problem.detail
    assert "SECRET-CONTENT" not in problem.detail


@pytest.mark.parametrize(("fmt", "fragment"), [
    (js({"type": "no-such-type"}), "not a valid JSON Schema"),
    (js("a string"), "must be an object"),
    ({"type": "json_schema"}, "must be an object"),
    (js({"$ref": "http://127.0.0.1:9/schema.json"}), "cannot be applied"),
    (js({"properties": {f"p{i}": {"type": "string", "description": "x" * 100}
                        for i in range(MAX_SCHEMA_BYTES // 100)}}), "larger than"),
    (js(json.loads('{"items":' * 40 + "{}" + "}" * 40)), "nests deeper"),
    (js({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}), "cannot be applied"),
])
def test_unsafe_or_invalid_schemas_are_refused(fmt: dict[str, Any], fragment: str) -> None:
    problem = check_structured('{"a": 1}', fmt)
    assert problem is not None and problem.reason == "invalid_response_format"
    assert fragment in problem.detail


def test_recursive_schema_with_a_base_case_validates() -> None:
    tree = {"$defs": {"node": {"type": "object", "properties": {
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
        "$ref": "#/$defs/node"}
    assert check_structured('{"children": [{"children": []}, {}]}', js(tree)) is None
    problem = check_structured('{"children": [{"children": 3}]}', js(tree))
    assert problem is not None and "$.children[0].children" in problem.detail


def test_boolean_schemas() -> None:
    assert check_structured("1", js(True)) is None
    assert check_structured("1", js(False)) is not None


@pytest.mark.parametrize("fmt", [None, {}, {"type": "text"}, {"type": 3}])
def test_no_structured_output_requested(fmt: dict[str, Any] | None) -> None:
    assert requested_schema(fmt) is None
