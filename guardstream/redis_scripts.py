"""Lua scripts shared by the Redis markers (LLM idempotency, emitted results)."""

from __future__ import annotations

__all__ = ["RELEASE_IF_OWNER"]

#: Delete KEYS[1] only while its value still contains ARGV[1] (the owner's token), so a
#: slow owner whose marker expired never frees the marker of the one that took over.
RELEASE_IF_OWNER = """
local raw = redis.call('GET', KEYS[1])
if raw and string.find(raw, ARGV[1], 1, true) then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
