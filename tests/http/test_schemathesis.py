"""Property-based requests generated from the OpenAPI document find no 5xx.

In process against the ASGI app with a fake pipeline (canned results, no broker), and
bounded: few examples per operation, no shrinking-heavy phases.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.http.fakes import KEY, FakePipeline, make_app

schemathesis = pytest.importorskip("schemathesis")

_APP = make_app(FakePipeline())

schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@pytest.fixture(autouse=True, scope="module")
def _running() -> Any:
    from starlette.testclient import TestClient

    with TestClient(_APP):  # runs the lifespan: the fake pipeline "starts"
        yield


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code < 500, (case.method, case.path, response.status_code,
                                        response.text[:300])
    case.validate_response(response)
