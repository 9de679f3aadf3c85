"""The HTTP front door over a fake pipeline: auth, shapes, status mapping, limits."""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from guardstream.client import ClientOverloaded, DependencyError, ResultTimeout
from guardstream.errors import GuardstreamError
from guardstream.http import REQUEST_ID_HEADER
from guardstream.models import Result, Status, Usage
from tests.http.fakes import KEY, PEPPERED_KEY, FakePipeline, make_app

AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = "my card is 4111 1111 1111 1111 and the launch code is swordfish"


def chat(content: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}],
            **fields}


def post(client: TestClient, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/chat/completions", json=body,
                       headers=AUTH if headers is None else headers)


@pytest.fixture
def pipeline() -> FakePipeline:
    return FakePipeline()


@pytest.fixture
def client(pipeline: FakePipeline) -> Any:
    with TestClient(make_app(pipeline, default_model="default-model")) as running:
        yield running


def test_an_answer_is_an_openai_chat_completion(client: TestClient,
                                                pipeline: FakePipeline) -> None:
    response = post(client, chat("What is Kafka?", max_completion_tokens=50,
                                 temperature=0.3, user="end-user-7",
                                 metadata={"app": "support"}))
    assert response.status_code == 200
    body = response.json()
    sent = pipeline.submitted[0]
    assert body["object"] == "chat.completion"
    assert body["id"] == f"chatcmpl-{sent['request_id']}"
    assert response.headers[REQUEST_ID_HEADER] == sent["request_id"]
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "a safe answer",
                                             "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    assert (sent["user_id"], sent["tier"]) == ("alice", "pro")
    assert sent["messages"] == [{"role": "user", "content": "What is Kafka?"}]
    assert (sent["max_tokens"], sent["temperature"]) == (50, 0.3)
    assert sent["metadata"] == {"app": "support", "end_user": "end-user-7"}


def test_every_call_gets_a_fresh_request_id(client: TestClient,
                                            pipeline: FakePipeline) -> None:
    for _ in range(3):
        assert post(client, chat()).status_code == 200
    assert len({s["request_id"] for s in pipeline.submitted}) == 3


def test_max_tokens_is_used_when_max_completion_tokens_is_absent(
        client: TestClient, pipeline: FakePipeline) -> None:
    post(client, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9})
    assert pipeline.submitted[0]["max_tokens"] == 9
    assert "model" not in pipeline.submitted[0]


def test_the_default_model_is_named_when_the_request_names_none(client: TestClient) -> None:
    response = post(client, {"messages": [{"role": "user", "content": "hi"}]})
    assert response.json()["model"] == "default-model"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer gsk_wrong"},
    {"Authorization": f"Basic {KEY}"},
    {"Authorization": KEY},
])
def test_bad_or_missing_keys_get_401_and_publish_nothing(
        client: TestClient, pipeline: FakePipeline, headers: dict[str, str]) -> None:
    response = post(client, chat(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert pipeline.submitted == []


def test_a_peppered_key_maps_to_its_user(client: TestClient, pipeline: FakePipeline) -> None:
    response = post(client, chat(), headers={"Authorization": f"Bearer {PEPPERED_KEY}"})
    assert response.status_code == 200
    assert (pipeline.submitted[0]["user_id"], pipeline.submitted[0]["tier"]) == ("bob", "free")


def _blocked(stage: str, reason: str, retry: float | None = None) -> Result:
    return Result(request_id="x", status=Status.BLOCKED, blocked_by=stage, reason=reason,
                  detail=f"blocked: {reason}", retry_after_seconds=retry,
                  usage=Usage(3, 0, 0.0))


def _failed(stage: str, reason: str) -> Result:
    return Result(request_id="x", status=Status.ERROR, blocked_by=stage, reason=reason,
                  detail=f"failed: {reason}")


@pytest.mark.parametrize(("result", "status", "retry_after"), [
    (_blocked("ratelimit", "rate_limited", 2.2), 429, "3"),
    (_blocked("ratelimit", "token_limit", 0.4), 429, "1"),
    (_blocked("ratelimit", "budget_exceeded", 3600), 429, "3600"),
    (_blocked("ratelimit", "budget_exceeded"), 429, "1"),
    (_blocked("validate", "invalid_role"), 400, None),
    (_blocked("validate", "control_chars"), 400, None),
    (_blocked("injection", "prompt_injection"), 403, None),
    (_blocked("moderate", "content_policy"), 403, None),
    (_blocked("output", "system_prompt_leak"), 403, None),
    (_failed("llm", "upstream_timeout"), 504, None),
    (_failed("llm", "upstream_error"), 502, None),
    (_failed("redact", "stage_error"), 502, None),
    (_failed("llm", "upstream_unavailable"), 502, None),
    (_failed("ratelimit", "limiter_unavailable"), 503, "1"),
    (_failed("moderate", "moderation_unavailable"), 503, "1"),
    (Result(request_id="x", status=Status.ERROR, blocked_by="llm", reason="upstream_error",
            detail="provider said 429", retry_after_seconds=7.5), 502, "8"),
])
def test_results_map_to_status_codes(result: Result, status: int,
                                     retry_after: str | None) -> None:
    pipeline = FakePipeline(lambda request: result)
    with TestClient(make_app(pipeline)) as client:
        response = post(client, chat(SECRET))
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry_after
    error = response.json()["error"]
    assert error["code"] == result.reason
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"] == result.detail
    assert "4111" not in response.text and "swordfish" not in response.text


@pytest.mark.parametrize(("exc", "status", "code"), [
    (ResultTimeout("x", 1.0), 504, "gateway_timeout"),
    (ClientOverloaded("busy"), 503, "overloaded"),
    (DependencyError("broker"), 503, "unavailable"),
    (GuardstreamError("other"), 502, "gateway_error"),
])
def test_client_failures_map_to_status_codes(exc: Exception, status: int, code: str) -> None:
    with TestClient(make_app(FakePipeline(error=exc))) as client:
        response = post(client, chat(SECRET))
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert "swordfish" not in response.text


@pytest.mark.parametrize(("body", "status", "code", "param"), [
    ([1, 2], 400, "invalid_body", None),
    ({"model": "m"}, 400, "invalid_parameter", "messages"),
    ({"messages": []}, 400, "invalid_parameter", "messages"),
    ({"messages": ["hi"]}, 400, "invalid_parameter", "messages[0]"),
    (chat(temperature=3), 400, "invalid_parameter", "temperature"),
    (chat(temperature=True), 400, "invalid_parameter", "temperature"),
    (chat(max_tokens=0), 400, "invalid_parameter", "max_tokens"),
    (chat(max_completion_tokens="9"), 400, "invalid_parameter", "max_completion_tokens"),
    (chat(model=5), 400, "invalid_parameter", "model"),
    (chat(metadata={"a": 1}), 400, "invalid_parameter", "metadata"),
    (chat(n=2), 400, "unsupported", "n"),
    (chat(tools=[{"type": "function"}]), 400, "unsupported", "tools"),
    (chat(stream="yes"), 400, "invalid_parameter", "stream"),
])
def test_malformed_requests_get_400_before_publishing(
        client: TestClient, pipeline: FakePipeline, body: Any, status: int, code: str,
        param: str | None) -> None:
    response = post(client, body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["param"] == param
    assert pipeline.submitted == []


def test_invalid_json_gets_400(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", content=b"{nope", headers=AUTH)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")


def test_content_problems_are_judged_by_the_pipeline(client: TestClient,
                                                     pipeline: FakePipeline) -> None:
    response = post(client, {"messages": [{"role": "wizard", "content": "hi"}]})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_role")
    assert len(pipeline.submitted) == 1


@pytest.mark.parametrize("chunked", [False, True])
def test_bodies_over_the_limit_get_413(pipeline: FakePipeline, chunked: bool) -> None:
    body = orjson.dumps(chat("x" * 2000))
    with TestClient(make_app(pipeline, max_body_bytes=1000)) as client:
        content: Any = iter([body[:500], body[500:]]) if chunked else body
        response = client.post("/v1/chat/completions", content=content,
                               headers={**AUTH, "Content-Type": "application/json"})
        small = post(client, chat("short"))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert small.status_code == 200 and len(pipeline.submitted) == 1


def test_stream_true_answers_with_server_sent_events(client: TestClient) -> None:
    response = post(client, chat(stream=True, stream_options={"include_usage": True}))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant",
                                                "content": "a safe answer"}
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[2]["usage"]["total_tokens"] == 15


def test_a_blocked_stream_is_a_plain_error(pipeline: FakePipeline) -> None:
    pipeline.responder = lambda request: _blocked("injection", "prompt_injection")
    with TestClient(make_app(pipeline)) as client:
        response = post(client, chat(stream=True))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "prompt_injection"


def test_healthz_follows_the_client(client: TestClient, pipeline: FakePipeline) -> None:
    assert client.get("/healthz").status_code == 200
    pipeline.healthy_override = False
    assert client.get("/healthz").status_code == 503


def test_metrics_count_requests_by_status_and_reason(pipeline: FakePipeline) -> None:
    with TestClient(make_app(pipeline)) as client:
        post(client, chat())
        post(client, chat())
        post(client, chat(), headers={})
        text = client.get("/metrics").text
    assert 'guardstream_http_requests_total{status="200",reason="ok"} 2' in text
    assert 'guardstream_http_requests_total{status="401",reason="invalid_api_key"} 1' in text
    assert "guardstream_http_request_duration_seconds_count 3" in text
    assert 'guardstream_http_request_duration_seconds_bucket{le="+Inf"} 3' in text


def test_unknown_routes_answer_in_the_error_shape(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    wrong_method = client.get("/v1/chat/completions")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert wrong_method.status_code == 405


def test_the_openapi_document_is_served(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/v1/chat/completions", "/healthz", "/metrics"}


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("203.0.113.7", None, "", "203.0.113.7"),
    ("203.0.113.7", "198.51.100.1", "", "203.0.113.7"),          # untrusted peer: ignored
    ("10.0.0.2", "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
    ("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.3", "10.0.0.0/8", "198.51.100.1"),
    ("10.0.0.2", "not-an-ip", "10.0.0.0/8", "10.0.0.2"),
    ("10.0.0.2", None, "10.0.0.0/8", "10.0.0.2"),
    ("testclient", None, "", None),
])
def test_client_ip(pipeline: FakePipeline, peer: str, forwarded: str | None, trusted: str,
                   expected: str | None) -> None:
    proxies = tuple(ipaddress.ip_network(t) for t in trusted.split(",") if t)
    app = make_app(pipeline, trusted_proxies=proxies)
    with TestClient(app, client=(peer, 5000)) as client:
        headers = {**AUTH, **({"X-Forwarded-For": forwarded} if forwarded else {})}
        assert post(client, chat(), headers=headers).status_code == 200
    assert pipeline.submitted[0].get("client_ip") == expected


def test_lifespan_starts_and_closes_the_client(pipeline: FakePipeline) -> None:
    with TestClient(make_app(pipeline)):
        assert pipeline.running
    assert not pipeline.running
