"""A small OpenAI-compatible model server for development, demos and tests.

`guardstream up` starts it when no provider is configured, so the whole pipeline runs
offline through the same openai SDK code path as production. By default it echoes the
last user message. Tests steer it over HTTP (`POST /_dev/behaviour`): a fixed reply,
failures with a status code for the next N calls, a delay. `GET /_dev/stats` counts the
chat calls per gateway request id (header `X-Guardstream-Request-Id`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from guardstream.embedded.ports import LOOPBACK, free_port

__all__ = ["DevBehaviour", "DevModelServer", "build_dev_app"]

REQUEST_ID_HEADER = "x-guardstream-request-id"


@dataclass
class DevBehaviour:
    reply: str | None = None          # None: echo the last user message
    fail_status: int | None = None    # answer this status ...
    fail_times: int = 0               # ... for this many calls (-1: forever)
    retry_after: float | None = None  # Retry-After header on failures
    delay_seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    total_calls: int = 0
    moderation_flag_words: tuple[str, ...] = ()


def _completion(model: str, text: str, prompt_tokens: int) -> dict[str, Any]:
    completion_tokens = max(1, len(text.split()))
    return {
        "id": f"chatcmpl-dev-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def build_dev_app(behaviour: DevBehaviour | None = None) -> Starlette:
    state = behaviour or DevBehaviour()

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        state.total_calls += 1
        request_id = request.headers.get(REQUEST_ID_HEADER)
        if request_id:
            state.calls[request_id] += 1
        if state.delay_seconds:
            await asyncio.sleep(state.delay_seconds)
        if state.fail_status is not None and state.fail_times != 0:
            if state.fail_times > 0:
                state.fail_times -= 1
            headers = ({"retry-after": str(state.retry_after)}
                       if state.retry_after is not None else {})
            return JSONResponse({"error": {"message": "dev model told to fail",
                                           "type": "dev_failure"}},
                                status_code=state.fail_status, headers=headers)
        messages = body.get("messages") or []
        text = state.reply
        if text is None:
            users = [m.get("content", "") for m in messages if m.get("role") == "user"]
            text = str(users[-1]) if users else ""
        prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
        return JSONResponse(_completion(str(body.get("model", "dev")), text, prompt_tokens))

    async def moderations(request: Request) -> JSONResponse:
        body = await request.json()
        inputs = body.get("input")
        texts = inputs if isinstance(inputs, list) else [inputs]
        results = []
        for text in texts:
            flagged = any(w in str(text).lower() for w in state.moderation_flag_words)
            results.append({"flagged": flagged,
                            "categories": {"violence": flagged},
                            "category_scores": {"violence": 0.99 if flagged else 0.01}})
        return JSONResponse({"id": "modr-dev", "model": body.get("model", "dev"),
                             "results": results})

    async def set_behaviour(request: Request) -> JSONResponse:
        body = await request.json()
        for key in ("reply", "fail_status", "fail_times", "retry_after", "delay_seconds"):
            if key in body:
                setattr(state, key, body[key])
        if "moderation_flag_words" in body:
            state.moderation_flag_words = tuple(body["moderation_flag_words"])
        if body.get("reset_stats"):
            state.calls.clear()
            state.total_calls = 0
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"total_calls": state.total_calls, "calls": dict(state.calls)})

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "dev", "object": "model"}]})

    app = Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/moderations", moderations, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_dev/behaviour", set_behaviour, methods=["POST"]),
        Route("/_dev/stats", stats, methods=["GET"]),
    ])
    app.state.behaviour = state
    return app


class DevModelServer:
    """Runs the dev model on a free loopback port in a background thread."""

    def __init__(self, behaviour: DevBehaviour | None = None, port: int | None = None) -> None:
        self.behaviour = behaviour or DevBehaviour()
        self.port = port or free_port()
        config = uvicorn.Config(build_dev_app(self.behaviour), host=LOOPBACK, port=self.port,
                                log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="guardstream-devmodel",
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the dev model server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def __enter__(self) -> DevModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
