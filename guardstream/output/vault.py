"""Reversible pseudonymization, the output side: put the user's own values back.

The redact stage (with `reversible: true`) keeps one Redis hash per request, key
`guardstream:{vault}:<request_id>`, placeholder (`<EMAIL_ADDRESS_1>`) -> original value, with
a TTL. This stage reads it once and deletes it in the same transaction, so a value lives in
Redis only between the two stages. Restoring happens after filtering: the values came from
the user, and filtering them again would just undo the restore.

When the answer is JSON (structured output), values are inserted JSON-escaped: a quote in a
restored name must not break the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["VAULT_KEY", "drop_vault", "restore_placeholders", "take_vault", "vault_key"]

VAULT_KEY = "guardstream:{{vault}}:{request_id}"

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


def vault_key(request_id: str) -> str:
    """The Redis hash of one request's placeholder -> value map (same key as redact's)."""
    return VAULT_KEY.format(request_id=request_id)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


async def take_vault(redis: Redis, request_id: str) -> dict[str, str]:
    """The request's placeholder map, deleted from Redis atomically as it is read."""
    key = vault_key(request_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(key)
        pipe.delete(key)
        raw, _ = await pipe.execute()
    return {_text(k): _text(v) for k, v in (raw or {}).items()}


async def drop_vault(redis: Redis, request_id: str) -> None:
    """Delete the request's map without reading it (the answer was withheld)."""
    await redis.delete(vault_key(request_id))


def restore_placeholders(text: str, mapping: Mapping[str, str], *,
                         json_escape: bool = False) -> tuple[str, int]:
    """`text` with known placeholders replaced by their values, and how many were replaced.

    Unknown placeholders stay as they are. With `json_escape`, values are escaped for the
    inside of a JSON string.
    """
    if not mapping:
        return text, 0
    count = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal count
        value = mapping.get(match.group(0))
        if value is None:
            return match.group(0)
        count += 1
        return json.dumps(value, ensure_ascii=False)[1:-1] if json_escape else value

    return _PLACEHOLDER.sub(swap, text), count
