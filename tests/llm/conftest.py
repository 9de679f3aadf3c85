"""A dev model of this package's own, so steering it never disturbs other tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from guardstream.devmodel import DevModelServer
from tests.llm.devcontrol import DevControl


@pytest.fixture(scope="session")
def llm_dev_server() -> Iterator[DevModelServer]:
    with DevModelServer() as server:
        yield server


@pytest.fixture
def dev(llm_dev_server: DevModelServer) -> DevControl:
    control = DevControl(llm_dev_server)
    control.steer(reset=True)
    return control
