"""The Starlette app of `guardstream serve`: OpenAI's chat endpoint in front of the pipeline.

Each call is authenticated with a gateway key (mapped to a user and tier), turned into a
gateway request with a fresh request id, published with the shared `GuardstreamClient`,
and answered from its result. Nothing here logs or echoes message content: logs carry
request ids, status codes and reason codes only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from guardstream.client import ClientClosed, ClientOverloaded, InvalidRequest, ResultTimeout
from guardstream.errors import DependencyError, GuardstreamError
from guardstream.http.config import HttpConfig
from guardstream.http.keys import GatewayKey, KeyStore
from guardstream.http.metrics import HttpMetrics
from guardstream.http.openai_map import (
    ApiError,
    completion_body,
    completion_chunks,
    error_for_result,
    parse_chat_body,
)
from guardstream.http.openapi import openapi_document
from guardstream.models import Result

__all__ = ["REQUEST_ID_HEADER", "ResultSource", "build_app", "client_address"]

log = logging.getLogger("guardstream.http")

REQUEST_ID_HEADER = "x-guardstream-request-id"


class ResultSource(Protocol):
    """What the app needs from a client (GuardstreamClient, or a fake in tests)."""

    @property
    def healthy(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, request: Mapping[str, Any], timeout: float = 60.0) -> Result: ...


def build_app(client: ResultSource, keys: KeyStore, config: HttpConfig,
              *, metrics: HttpMetrics | None = None) -> Starlette:
    """The ASGI app. It starts and closes `client` with its own lifespan."""
    counters = metrics or HttpMetrics()
    document = orjson.dumps(openapi_document())

    async def chat_completions(request: Request) -> Response:
        started = time.perf_counter()
        request_id: str | None = None
        try:
            caller = _authenticate(request, keys)
            call = parse_chat_body(_decode(await _read_body(request, config.max_body_bytes)))
            request_id = f"http-{uuid.uuid4().hex}"
            body = call.gateway_request(request_id=request_id, user_id=caller.user_id,
                                        tier=caller.tier,
                                        client_ip=client_address(request, config))
            result = await _submit(client, body, config.timeout_seconds)
            error = error_for_result(result)
            if error is not None:
                raise error
            model = call.model or config.default_model
            response: Response
            if call.stream:
                chunks = completion_chunks(result, model=model,
                                           include_usage=call.include_usage)
                stream = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
                response = Response(stream + b"data: [DONE]\n\n",
                                    media_type="text/event-stream",
                                    headers={"Cache-Control": "no-cache"})
            else:
                response = _json(completion_body(result, model=model), 200)
            reason = "ok"
        except ApiError as exc:
            response = _json(exc.body(), exc.status, exc.headers)
            reason = exc.code
        if request_id is not None:
            response.headers[REQUEST_ID_HEADER] = request_id
        counters.observe(response.status_code, reason, time.perf_counter() - started)
        if response.status_code >= 500:
            log.warning("answered %d %s", response.status_code, reason,
                        extra={"request_id": request_id})
        return response

    async def healthz(request: Request) -> Response:
        if client.healthy:
            return _json({"status": "ok"}, 200)
        return _json({"status": "unavailable"}, 503)

    async def prometheus(request: Request) -> Response:
        return Response(counters.render(), media_type="text/plain; version=0.0.4")

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await client.start()
        try:
            yield
        finally:
            await client.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        message = exc.detail if isinstance(exc, HTTPException) else "internal error"
        headers = exc.headers if isinstance(exc, HTTPException) else None  # e.g. Allow
        return _json(ApiError(status, code, str(message)).body(), status, headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s", type(exc).__name__)  # the type only: no content
        counters.observe(500, "internal_error", 0.0)
        return _json(ApiError(500, "internal_error", "internal error",
                              type="server_error").body(), 500)

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: internal_error})
    app.state.metrics = counters
    return app


def _json(body: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=dict(headers or {}))


def _authenticate(request: Request, keys: KeyStore) -> GatewayKey:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    caller = keys.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        raise ApiError(401, "invalid_api_key", "missing or invalid gateway key (send "
                       "Authorization: Bearer <key>)", type="authentication_error",
                       headers={"WWW-Authenticate": "Bearer"})
    return caller


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ApiError(413, "request_too_large",
                         f"the request body is larger than {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None


async def _submit(client: ResultSource, body: Mapping[str, Any], timeout: float) -> Result:
    """Publish and wait; the client's errors become HTTP answers."""
    try:
        return await client.submit(body, timeout)
    except ResultTimeout:
        raise ApiError(504, "gateway_timeout", f"no result within {timeout:g}s",
                       type="server_error") from None
    except ClientOverloaded:
        raise ApiError(503, "overloaded", "too many requests in flight, retry shortly",
                       type="server_error", headers={"Retry-After": "1"}) from None
    except InvalidRequest:
        raise ApiError(400, "invalid_request", "the request cannot be published") from None
    except (ClientClosed, DependencyError):
        raise ApiError(503, "unavailable", "the gateway cannot reach the pipeline",
                       type="server_error", headers={"Retry-After": "1"}) from None
    except GuardstreamError:
        raise ApiError(502, "gateway_error", "the pipeline failed",
                       type="server_error") from None


def client_address(request: Request, config: HttpConfig) -> str | None:
    """The caller's IP: the TCP peer, or, when that peer is a trusted proxy, the rightmost
    `X-Forwarded-For` address that is not itself a trusted proxy. None if not an IP."""
    peer = _ip(request.client.host if request.client else None)
    if peer is None:
        return None
    if not config.trusted_proxies or not _trusted(peer, config):
        return str(peer)
    forwarded = [part.strip() for part in
                 ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed(forwarded):
        address = _ip(hop)
        if address is None:
            break
        if not _trusted(address, config):
            return str(address)
    return str(peer)


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             config: HttpConfig) -> bool:
    return any(address.version == net.version and address in net
               for net in config.trusted_proxies)
