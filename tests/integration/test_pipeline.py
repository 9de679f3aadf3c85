"""The whole pipeline on the embedded broker: plain JSON in, exactly one result each out."""

from __future__ import annotations

import orjson
import pytest

from tests.support import GatewayProcess, consume, produce, request, results_by_id

pytestmark = pytest.mark.integration


async def test_every_request_gets_exactly_one_result(gateway: GatewayProcess) -> None:
    requests = [request(f"r-{i}", f"Question number {i}: what is a stream processor?")
                for i in range(20)]
    bad = [
        request("bad-role", messages=[{"role": "wizard", "content": "hi"}]),
        {"request_id": "no-user", "messages": [{"role": "user", "content": "hi"}]},
    ]
    await produce(gateway.bootstrap, gateway.topic("requests"),
                  [(r["request_id"].encode(), orjson.dumps(r)) for r in requests + bad])

    records = await consume(gateway.bootstrap, gateway.topic("results"), until=22, settle=2.0)
    by_id = results_by_id(records)

    assert set(by_id) == {r["request_id"] for r in requests + bad}
    assert all(len(results) == 1 for results in by_id.values())
    for r in requests:
        result = by_id[r["request_id"]][0]
        assert result["status"] == "ok", result
        assert result["messages"][-1]["content"] == r["messages"][0]["content"]
        assert set(result["stages"]) == {"ratelimit", "validate", "redact", "moderate",
                                         "injection", "llm", "output"}
    assert by_id["bad-role"][0]["status"] == "blocked"
    assert by_id["bad-role"][0]["blocked_by"] == "validate"
    assert by_id["bad-role"][0]["reason"] == "invalid_role"
    assert by_id["no-user"][0]["reason"] == "invalid_user_id"


async def test_undecodable_input_goes_to_the_dead_letter_topic(gateway: GatewayProcess) -> None:
    poison = [b"{not json", b"\xff\xfe\x00", orjson.dumps([1, 2, 3]),
              orjson.dumps({"user_id": "x", "messages": []})]
    await produce(gateway.bootstrap, gateway.topic("requests"),
                  [(b"k", value) for value in poison] +
                  [(b"ok-1", orjson.dumps(request("ok-1")))])

    letters = await consume(gateway.bootstrap, gateway.topic("dlq"), until=4, settle=1.0)
    results = results_by_id(await consume(gateway.bootstrap, gateway.topic("results"),
                                          until=1, settle=1.0))

    assert len(letters) == 4
    import base64

    originals = {base64.b64decode(orjson.loads(v)["value_b64"]) for _, v in letters}
    assert originals == set(poison)
    first = orjson.loads(letters[0][1])
    assert first["source"]["topic"] == gateway.topic("requests")
    assert isinstance(first["source"]["offset"], int)
    assert set(results) == {"ok-1"}
    assert results["ok-1"][0]["status"] == "ok"
