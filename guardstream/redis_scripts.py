"""What the Redis markers (LLM idempotency, emitted results) share: their Lua release
script and how a marker's JSON record is read back."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["RELEASE_IF_OWNER", "read_marker"]

#: Delete KEYS[1] only while its value still contains ARGV[1] (the owner's token), so a
#: slow owner whose marker expired never frees the marker of the one that took over.
RELEASE_IF_OWNER = """
local raw = redis.call('GET', KEYS[1])
if raw and string.find(raw, ARGV[1], 1, true) then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def read_marker(raw: bytes | str) -> dict[str, Any]:
    """A marker's JSON record; an empty one when the value is not a JSON object."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
