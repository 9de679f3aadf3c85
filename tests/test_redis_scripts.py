"""Marker records read back from Redis: anything but a JSON object reads as an empty one."""

from __future__ import annotations

from typing import Any

import pytest

from guardstream.redis_scripts import read_marker


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"s": "done", "o": "0:5"}', {"s": "done", "o": "0:5"}),
    ('{"state": "pending"}', {"state": "pending"}),
    (b"not json", {}),
    (b"[1, 2]", {}),
    (b'"a string"', {}),
    (b"", {}),
])
def test_read_marker(raw: bytes | str, expected: dict[str, Any]) -> None:
    assert read_marker(raw) == expected
