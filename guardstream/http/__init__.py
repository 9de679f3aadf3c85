"""The OpenAI-compatible HTTP front door (`guardstream serve`).

Applications that speak the OpenAI API adopt the gateway by changing `base_url` to
`http://HOST:PORT/v1` and using a gateway key (`guardstream keys create`) as API key.
"""

from __future__ import annotations

from guardstream.http.app import REQUEST_ID_HEADER, ResultSource, build_app, client_address
from guardstream.http.config import HttpConfig
from guardstream.http.keys import GatewayKey, KeyStore, generate_key, hash_key
from guardstream.http.metrics import HttpMetrics
from guardstream.http.openai_map import ApiError, error_for_result, parse_chat_body
from guardstream.http.openapi import openapi_document

__all__ = [
    "REQUEST_ID_HEADER",
    "ApiError",
    "GatewayKey",
    "HttpConfig",
    "HttpMetrics",
    "KeyStore",
    "ResultSource",
    "build_app",
    "client_address",
    "error_for_result",
    "generate_key",
    "hash_key",
    "openapi_document",
    "parse_chat_body",
]
