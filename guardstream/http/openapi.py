"""The OpenAPI 3.0 description of the HTTP API: the one source of truth.

`guardstream serve` serves it at `/openapi.json`, `guardstream serve --print-openapi`
prints it, and the schemathesis test generates requests from it. The request schema is
what the door checks (see `openai_map.parse_chat_body`); other OpenAI parameters are
accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from guardstream.agents.validate import ROLES

__all__ = ["openapi_document"]

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": _ERROR_REF}}}
    if retry_after:
        response["headers"] = {"Retry-After": {
            "description": "seconds to wait before retrying",
            "schema": {"type": "integer", "minimum": 1}}}
    return response


def _schemas() -> dict[str, Any]:
    text_part = {"type": "object", "required": ["type", "text"],
                 "properties": {"type": {"type": "string", "enum": ["text"]},
                                "text": {"type": "string"}}}
    return {
        "ChatMessage": {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"type": "string", "enum": sorted(ROLES),
                         "description": "other roles are blocked by the validate stage"},
                "content": {"oneOf": [{"type": "string"},
                                      {"type": "array", "minItems": 1, "items": text_part}]},
            },
        },
        "ChatCompletionRequest": {
            "type": "object",
            "required": ["messages"],
            "properties": {
                "model": {"type": "string", "nullable": True,
                          "description": "null: the policy's default model"},
                "messages": {"type": "array", "minItems": 1,
                             "items": {"$ref": "#/components/schemas/ChatMessage"}},
                "max_tokens": {"type": "integer", "minimum": 1, "nullable": True},
                "max_completion_tokens": {"type": "integer", "minimum": 1, "nullable": True},
                "temperature": {"type": "number", "minimum": 0, "maximum": 2,
                                "nullable": True},
                "response_format": {"type": "object", "nullable": True},
                "user": {"type": "string", "nullable": True},
                "metadata": {"type": "object", "nullable": True,
                             "additionalProperties": {"type": "string"}},
                "stream": {"type": "boolean", "nullable": True,
                           "description": "true: one content chunk, a finish chunk and "
                                          "[DONE], sent once the pipeline has answered"},
                "stream_options": {"type": "object", "nullable": True,
                                   "properties": {"include_usage": {"type": "boolean"}}},
                "n": {"type": "integer", "minimum": 1, "maximum": 1, "nullable": True},
            },
        },
        "Usage": {
            "type": "object",
            "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
            "properties": {"prompt_tokens": {"type": "integer", "minimum": 0},
                           "completion_tokens": {"type": "integer", "minimum": 0},
                           "total_tokens": {"type": "integer", "minimum": 0}},
        },
        "ChatCompletion": {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices", "usage"],
            "properties": {
                "id": {"type": "string"},
                "object": {"type": "string", "enum": ["chat.completion"]},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "required": ["index", "message", "finish_reason"],
                    "properties": {
                        "index": {"type": "integer"},
                        "message": {"type": "object", "required": ["role", "content"],
                                    "properties": {
                                        "role": {"type": "string", "enum": ["assistant"]},
                                        "content": {"type": "string"},
                                        "refusal": {"type": "string", "nullable": True}}},
                        "finish_reason": {"type": "string"},
                    }}},
                "usage": {"$ref": "#/components/schemas/Usage"},
                "system_fingerprint": {"type": "string", "nullable": True},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["message", "type", "code", "param"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "code": {"type": "string",
                             "description": "a stable machine code: the result's reason "
                                            "(prompt_injection, rate_limited, ...) or the "
                                            "door's own (invalid_api_key, ...)"},
                    "param": {"type": "string", "nullable": True},
                }}},
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of `guardstream serve`."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "guardstream gateway",
            "version": "1",
            "description": "An OpenAI-compatible chat-completions endpoint in front of the "
                           "guardstream pipeline. Point an OpenAI SDK's base_url at "
                           "`http://HOST:PORT/v1` and use a gateway key as the API key.",
        },
        "components": {
            "securitySchemes": {"gatewayKey": {"type": "http", "scheme": "bearer",
                                               "description": "a gateway key (gsk_...)"}},
            "schemas": _schemas(),
        },
        "paths": {
            "/v1/chat/completions": {"post": {
                "operationId": "createChatCompletion",
                "summary": "Run a chat request through every defense stage and the model",
                "security": [{"gatewayKey": []}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}}},
                "responses": {
                    "200": {"description": "the (filtered) answer",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ChatCompletion"}},
                                "text/event-stream": {"schema": {
                                    "description": "server-sent events: each `data` is a "
                                                   "chat.completion.chunk JSON, the last "
                                                   "is [DONE]",
                                    "type": "object", "required": ["data"],
                                    "properties": {"data": {"type": "string"}}}}}},
                    "400": _error("malformed request, or rejected by the validate stage"),
                    "401": _error("missing or unknown gateway key"),
                    "403": _error("blocked by a policy stage; error.code is the reason"),
                    "413": _error("request body larger than the configured limit"),
                    "429": _error("rate, token or budget limit", retry_after=True),
                    "502": _error("the model provider or a stage failed"),
                    "503": _error("the broker, or a dependency of a stage (Redis, moderation), "
                                  "is unavailable, or the gateway is overloaded",
                                  retry_after=True),
                    "504": _error("no answer in time (the gateway's or the provider's)"),
                },
            }},
            "/healthz": {"get": {
                "operationId": "health",
                "summary": "200 while the results consumer runs (the broker is reachable)",
                "responses": {
                    "200": {"description": "ready", "content": {"application/json": {
                        "schema": {"type": "object", "required": ["status"],
                                   "properties": {"status": {"type": "string"}}}}}},
                    "503": {"description": "not ready", "content": {"application/json": {
                        "schema": {"type": "object", "required": ["status"],
                                   "properties": {"status": {"type": "string"}}}}}},
                },
            }},
            "/metrics": {"get": {
                "operationId": "metrics",
                "summary": "Prometheus text format: requests by status and reason, latency",
                "responses": {"200": {"description": "metrics", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}},
            }},
        },
    }
