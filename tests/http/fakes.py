"""A fake pipeline for the HTTP app: canned results instead of Kafka."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette

from guardstream.agents.validate import ROLES
from guardstream.http import GatewayKey, HttpConfig, KeyStore, build_app, hash_key
from guardstream.models import ChatRequest, Result, Status, Usage

KEY = "gsk_test-key-alice"
PEPPERED_KEY = "gsk_test-key-bob"
PEPPER = b"pepper-for-tests"

Responder = Callable[[Mapping[str, Any]], Result]



def default_responder(request: Mapping[str, Any]) -> Result:
    """Like the pipeline: structural problems -> blocked by validate, else an answer."""
    parsed = ChatRequest.from_dict(dict(request))
    request_id = str(request["request_id"])
    if parsed.problems:
        problem = parsed.problems[0]
        return Result(request_id=request_id, status=Status.BLOCKED, blocked_by="validate",
                      reason=problem.reason, detail=problem.detail)
    if any(m.role not in ROLES for m in parsed.messages):
        return Result(request_id=request_id, status=Status.BLOCKED, blocked_by="validate",
                      reason="invalid_role", detail="a message has an unknown role")
    return Result(request_id=request_id, status=Status.OK, output="a safe answer",
                  messages=parsed.messages, usage=Usage(11, 4, 0.0001))


class FakePipeline:
    """Implements the app's ResultSource; records what was submitted."""

    def __init__(self, responder: Responder = default_responder,
                 error: Exception | None = None) -> None:
        self.responder = responder
        self.error = error
        self.submitted: list[dict[str, Any]] = []
        self.running = False
        self.healthy_override: bool | None = None

    @property
    def healthy(self) -> bool:
        return self.running if self.healthy_override is None else self.healthy_override

    async def start(self) -> None:
        self.running = True

    async def close(self) -> None:
        self.running = False

    async def submit(self, request: Mapping[str, Any], timeout: float = 60.0) -> Result:
        self.submitted.append(dict(request))
        if self.error is not None:
            raise self.error
        return self.responder(request)


def key_store() -> KeyStore:
    return KeyStore([
        GatewayKey(hash_key(KEY), "alice", "pro", "tests"),
        GatewayKey(hash_key(PEPPERED_KEY, PEPPER), "bob", "free"),
    ], pepper=PEPPER)


def make_app(pipeline: FakePipeline, **config: Any) -> Starlette:
    return build_app(pipeline, key_store(), HttpConfig(**config))
