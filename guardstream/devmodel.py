"""A small OpenAI-compatible model server for development, demos and tests.

`guardstream up` starts it when no provider is configured, so the whole pipeline runs
offline through the same openai SDK code path as production. By default it echoes the
last user message (cut to `max_tokens` words, like a real model stops at its limit);
moderations are scored by the local moderation backend. Tests steer it over HTTP
(`POST /_dev/behaviour`): a fixed reply, echo of the system prompt, failures with a
status code (and Retry-After) for the next N calls, a delay, which bearer keys it accepts.

`GET /_dev/stats` counts chat calls per gateway request id (header
`X-Guardstream-Request-Id`), the bearer keys it saw as short SHA-256 fingerprints
(`key_fingerprint`) — never the keys themselves — and the parameters (not the messages)
of the last call.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from guardstream.embedded.ports import LOOPBACK, free_port

__all__ = ["DevBehaviour", "DevModelServer", "build_dev_app", "key_fingerprint"]

REQUEST_ID_HEADER = "x-guardstream-request-id"
_SETTABLE = ("reply", "fail_status", "fail_times", "retry_after", "delay_seconds", "echo",
             "finish_reason")


def key_fingerprint(key: str) -> str:
    """What the dev model records of a bearer key: 12 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass
class DevBehaviour:
    reply: str | None = None          # None: echo (see `echo`)
    echo: str = "user"                # echo the last "user" or "system" message
    fail_status: int | None = None    # answer this status ...
    fail_times: int = 0               # ... for this many calls (-1: forever)
    retry_after: float | None = None  # Retry-After header on failures
    delay_seconds: float = 0.0
    finish_reason: str | None = None  # e.g. "content_filter"; None: stop / length
    accept_bearers: tuple[str, ...] | None = None  # fingerprints; others get a 401
    calls: Counter[str] = field(default_factory=Counter)
    total_calls: int = 0
    bearers: Counter[str] = field(default_factory=Counter)
    last_bearer: str | None = None
    last_params: dict[str, Any] = field(default_factory=dict)
    moderation_flag_words: tuple[str, ...] = ()
    moderation_calls: int = 0


def _completion(model: str, text: str, prompt_tokens: int, max_tokens: int | None,
                finish_reason: str | None = None) -> dict[str, Any]:
    words = text.split()
    finish = finish_reason or "stop"
    if max_tokens is not None and 0 < max_tokens < len(words):
        text = " ".join(words[:max_tokens])
        finish = "length"
    completion_tokens = max(1, len(text.split()))
    return {
        "id": f"chatcmpl-dev-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _error(status: int, message: str, kind: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status,
                        headers=headers)


class _LocalModeration:
    """The local moderation backend, loaded on the first moderation call."""

    def __init__(self) -> None:
        self._moderator: Any = None
        self._lock = threading.Lock()

    def score(self, texts: list[str]) -> list[dict[str, Any]]:
        with self._lock:
            if self._moderator is None:
                from guardstream.detectors.moderation import LocalModerator

                self._moderator = LocalModerator()
        moderator = self._moderator
        thresholds = moderator.default_thresholds
        results = []
        for scores in moderator.score_many(texts):
            flagged_cats = set(scores.flagged(thresholds))
            results.append({
                "flagged": bool(flagged_cats),
                "categories": {c: c in flagged_cats for c in scores.scores},
                "category_scores": {c: round(float(v), 6) for c, v in scores.scores.items()},
            })
        return results


def build_dev_app(behaviour: DevBehaviour | None = None) -> Starlette:
    state = behaviour or DevBehaviour()
    local_moderation = _LocalModeration()

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        state.total_calls += 1
        request_id = request.headers.get(REQUEST_ID_HEADER)
        if request_id:
            state.calls[request_id] += 1
        auth = request.headers.get("authorization", "")
        bearer = key_fingerprint(auth.removeprefix("Bearer ").strip()) if auth else None
        if bearer is not None:
            state.bearers[bearer] += 1
        state.last_bearer = bearer
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        state.last_params = {k: body.get(k) for k in ("model", "temperature",
                                                      "response_format")}
        state.last_params["max_tokens"] = max_tokens
        if state.delay_seconds:
            await asyncio.sleep(state.delay_seconds)
        if state.accept_bearers is not None and bearer not in state.accept_bearers:
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        if state.fail_status is not None and state.fail_times != 0:
            if state.fail_times > 0:
                state.fail_times -= 1
            headers = ({"retry-after": f"{state.retry_after:g}"}
                       if state.retry_after is not None else {})
            return _error(state.fail_status, "dev model told to fail", "dev_failure", headers)
        messages = body.get("messages") or []
        text = state.reply
        if text is None:
            wanted = "system" if state.echo == "system" else "user"
            found = [m.get("content", "") for m in messages if m.get("role") == wanted]
            text = str(found[-1]) if found else ""
        prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)
        limit = max_tokens if isinstance(max_tokens, int) else None
        return JSONResponse(_completion(str(body.get("model", "dev")), text, prompt_tokens,
                                        limit, state.finish_reason))

    async def moderations(request: Request) -> JSONResponse:
        body = await request.json()
        state.moderation_calls += 1
        inputs = body.get("input")
        texts = [str(t) for t in (inputs if isinstance(inputs, list) else [inputs])]
        if state.moderation_flag_words:
            # Steered by a test: flag exactly the texts containing one of the words.
            results = []
            for text in texts:
                flagged = any(w in text.lower() for w in state.moderation_flag_words)
                results.append({"flagged": flagged,
                                "categories": {"violence": flagged},
                                "category_scores": {"violence": 0.99 if flagged else 0.01}})
        else:
            results = await run_in_threadpool(local_moderation.score, texts)
        return JSONResponse({"id": "modr-dev", "model": body.get("model", "dev"),
                             "results": results})

    async def set_behaviour(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("reset"):  # first, so one call can reset and then steer
            fresh = DevBehaviour()
            for key in (*_SETTABLE, "accept_bearers", "moderation_flag_words"):
                setattr(state, key, getattr(fresh, key))
        for key in _SETTABLE:
            if key in body:
                setattr(state, key, body[key])
        if "moderation_flag_words" in body:
            state.moderation_flag_words = tuple(body["moderation_flag_words"])
        if "accept_bearers" in body:
            accepted = body["accept_bearers"]
            state.accept_bearers = None if accepted is None else tuple(accepted)
        if body.get("reset_stats") or body.get("reset"):
            state.calls.clear()
            state.total_calls = 0
            state.bearers.clear()
            state.last_bearer = None
            state.last_params = {}
            state.moderation_calls = 0
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"total_calls": state.total_calls, "calls": dict(state.calls),
                             "bearers": dict(state.bearers), "last_bearer": state.last_bearer,
                             "last_params": state.last_params,
                             "moderation_calls": state.moderation_calls})

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

    @property
    def root_url(self) -> str:
        """Where `/_dev/behaviour` and `/_dev/stats` live."""
        return f"http://{LOOPBACK}:{self.port}"

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

