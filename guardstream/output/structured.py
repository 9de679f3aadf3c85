"""Structured output: the answer must be the JSON the request's `response_format` asked for.

`{"type": "json_object"}` needs a JSON object; `{"type": "json_schema", "json_schema":
{"schema": {...}}}` needs an instance valid under that schema (Draft 2020-12). The schema
comes from the requester, so it is treated as untrusted input too: its size and depth are
bounded, it is checked against the metaschema first, and `$ref`s that leave the document
are never fetched. Problems are reported with the JSON path and the failed keyword, never
the answer's content (error messages of jsonschema quote the instance, so they are not
used).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

__all__ = [
    "MAX_ANSWER_DEPTH",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "MAX_SCHEMA_NODES",
    "StructuredProblem",
    "check_structured",
    "requested_schema",
]

MAX_SCHEMA_BYTES = 64_000
MAX_SCHEMA_DEPTH = 32
MAX_SCHEMA_NODES = 5_000
MAX_ANSWER_DEPTH = 128

_JSON_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True, slots=True)
class StructuredProblem:
    """Why structured output failed: `invalid_structured_output` (the answer) or
    `invalid_response_format` (the requested schema itself); `detail` is for people."""

    reason: str
    detail: str


def _no_retrieval(uri: str) -> Any:
    # Remote $refs would make the gateway fetch URLs a requester chose: never.
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


_REGISTRY: Registry[Any] = Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]


def _depth_and_nodes(value: Any, max_depth: int) -> tuple[int, int]:
    """Maximum nesting depth (stopping past `max_depth`) and number of containers."""
    deepest = 0
    nodes = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        nodes += 1
        deepest = max(deepest, depth)
        if depth > max_depth:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest, nodes


def requested_schema(response_format: Mapping[str, Any] | None
                     ) -> dict[str, Any] | StructuredProblem | None:
    """The schema to validate against, a problem with the request's format, or None when
    the request did not ask for structured output."""
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return _JSON_OBJECT
    if kind != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, dict | bool):
        return StructuredProblem("invalid_response_format",
                                 "response_format.json_schema.schema must be an object")
    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError, RecursionError):
        return StructuredProblem("invalid_response_format", "the schema is not plain JSON")
    if size > MAX_SCHEMA_BYTES:
        return StructuredProblem("invalid_response_format",
                                 f"the schema is larger than {MAX_SCHEMA_BYTES} bytes")
    depth, nodes = _depth_and_nodes(schema, MAX_SCHEMA_DEPTH)
    if depth > MAX_SCHEMA_DEPTH or nodes > MAX_SCHEMA_NODES:
        return StructuredProblem("invalid_response_format",
                                 f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels or "
                                 f"has more than {MAX_SCHEMA_NODES} objects")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = exc.json_path if hasattr(exc, "json_path") else "$"
        return StructuredProblem("invalid_response_format",
                                 f"the schema is not a valid JSON Schema (2020-12) at {where}: "
                                 f"keyword '{exc.validator}'")
    return schema


def _where(error: ValidationError) -> str:
    detail = f"at {error.json_path} (keyword '{error.validator}')"
    if error.validator == "required" and isinstance(error.instance, dict) and isinstance(
            error.validator_value, list):
        # Property names come from the schema (the requester's), not from the answer.
        missing = [str(n) for n in error.validator_value if n not in error.instance]
        if missing:
            detail += f": missing {', '.join(repr(n) for n in missing[:5])}"
    return detail


def check_structured(text: str, response_format: Mapping[str, Any] | None
                     ) -> StructuredProblem | None:
    """None when `text` satisfies `response_format` (or none was requested), else why not."""
    schema = requested_schema(response_format)
    if schema is None or isinstance(schema, StructuredProblem):
        return schema
    try:
        instance = json.loads(text)
    except json.JSONDecodeError as exc:
        return StructuredProblem("invalid_structured_output",
                                 f"the answer is not valid JSON (line {exc.lineno}, "
                                 f"column {exc.colno})")
    except RecursionError:
        return StructuredProblem("invalid_structured_output",
                                 f"the answer nests deeper than {MAX_ANSWER_DEPTH} levels")
    depth, _ = _depth_and_nodes(instance, MAX_ANSWER_DEPTH)
    if depth > MAX_ANSWER_DEPTH:
        return StructuredProblem("invalid_structured_output",
                                 f"the answer nests deeper than {MAX_ANSWER_DEPTH} levels")
    validator = Draft202012Validator(schema, registry=_REGISTRY)
    try:
        error = best_match(validator.iter_errors(instance))
    except (Unresolvable, RecursionError) as exc:
        return StructuredProblem("invalid_response_format",
                                 f"the schema cannot be applied ({type(exc).__name__}: a $ref "
                                 "that cannot be resolved locally, or unbounded recursion)")
    except Exception as exc:  # a referencing error wrapped by jsonschema, or a bad regex
        return StructuredProblem("invalid_response_format",
                                 f"the schema cannot be applied ({type(exc).__name__})")
    if error is None:
        return None
    if schema is _JSON_OBJECT:
        return StructuredProblem("invalid_structured_output",
                                 "the answer is JSON but not a JSON object, as "
                                 "response_format json_object requires")
    return StructuredProblem("invalid_structured_output",
                             f"the answer does not match the requested JSON schema {_where(error)}")
