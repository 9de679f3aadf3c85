"""Steering the dev model over its HTTP API from tests."""

from __future__ import annotations

from typing import Any

import httpx

from guardstream.devmodel import DevModelServer


class DevControl:
    def __init__(self, server: DevModelServer) -> None:
        self.server = server
        self.base_url = server.base_url

    def steer(self, **behaviour: Any) -> None:
        httpx.post(f"{self.server.root_url}/_dev/behaviour", json=behaviour,
                   timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.server.root_url}/_dev/stats", timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data
