"""A scriptable OpenAI-compatible moderation server for the `openai` backend's tests.

Real HTTP through the openai SDK. A text containing `<<self-harm/intent=0.93>>` gets that
OpenAI subcategory score (and OpenAI's flag when >= 0.5); every other score is 0.01.
`fail(status, times)` answers the next `times` calls with that status; `delay` stalls
answers; `raw` replaces the next answer's body.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# OpenAI's moderation categories as the API names them (omni-moderation-latest).
OPENAI_SUBCATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)
_MARKER = re.compile(r"<<([a-z/-]+)=([0-9.]+)>>")


def openai_result(text: str) -> dict[str, Any]:
    scores = dict.fromkeys(OPENAI_SUBCATEGORIES, 0.01)
    for name, value in _MARKER.findall(text):
        scores[name] = float(value)
    flags = {name: score >= 0.5 for name, score in scores.items()}
    return {"flagged": any(flags.values()), "categories": flags, "category_scores": scores,
            "category_applied_input_types": {name: ["text"] for name in scores}}


@dataclass
class FakeModeration:
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    fail_status: int | None = None
    fail_times: int = 0
    retry_after: str | None = None
    delay: float = 0.0
    raw: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, status: int, times: int = -1, retry_after: str | None = None) -> None:
        """Answer `status` to the next `times` calls (-1: every call)."""
        with self.lock:
            self.fail_status, self.fail_times, self.retry_after = status, times, retry_after

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.authorizations.clear()
            self.fail_status, self.fail_times, self.retry_after = None, 0, None
            self.delay, self.raw = 0.0, None

    async def handle(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.requests.append(body)
            self.authorizations.append(request.headers.get("authorization", ""))
            failing = self.fail_status is not None and self.fail_times != 0
            if failing and self.fail_times > 0:
                self.fail_times -= 1
            status, retry_after, delay, raw = (self.fail_status, self.retry_after,
                                               self.delay, self.raw)
            self.raw = None
        if delay:
            await asyncio.sleep(delay)
        if failing and status is not None:
            headers = {"retry-after": retry_after} if retry_after is not None else {}
            return JSONResponse({"error": {"message": "scripted failure", "type": "x"}},
                                status_code=status, headers=headers)
        if raw is not None:
            return Response(raw, media_type="application/json")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse({"id": "modr-test", "model": body.get("model"),
                             "results": [openai_result(str(text)) for text in inputs]})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ModerationServer:
    state: FakeModeration
    base_url: str


@pytest.fixture(scope="session")
def _moderation_server() -> Iterator[ModerationServer]:
    state = FakeModeration()
    app = Starlette(routes=[Route("/v1/moderations", state.handle, methods=["POST"])])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False,
                                           lifespan="off", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="test-moderation-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield ModerationServer(state, f"http://127.0.0.1:{port}/v1")
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def moderation_server(_moderation_server: ModerationServer,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[ModerationServer]:
    """The session's server, reset; OPENAI_API_KEY pinned so no real key is ever sent."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-moderation")
    _moderation_server.state.reset()
    yield _moderation_server
    _moderation_server.state.reset()
