"""Gateway API keys: issued once, stored only as hashes, mapped to a user and a tier.

A key is `gsk_` followed by 43 URL-safe characters (256 bits from `secrets`). The keys file
stores its hash, never the key:

- `sha256:<hex>`: SHA-256 of the key. Enough for random 256-bit keys (nothing to brute
  force), and needs no secret on the server.
- `hmac-sha256:<hex>`: HMAC-SHA-256 keyed with a server-side pepper
  (`GUARDSTREAM_GATEWAY_KEY_PEPPER`). Preferred: a copy of the keys file without the pepper
  does not even let anyone confirm a leaked key.

The file (YAML or JSON, path in `GUARDSTREAM_GATEWAY_KEYS`) is a list of entries, or a
mapping with a `keys:` list; each entry has `hash`, `user_id`, `tier` and optionally `name`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardstream.errors import ConfigError

__all__ = ["KEY_PREFIX", "GatewayKey", "KeyStore", "generate_key", "hash_key"]

KEY_PREFIX = "gsk_"
_SCHEMES = ("sha256", "hmac-sha256")


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """Who a key belongs to. `key_hash` is what the file stores; the key itself is gone."""

    key_hash: str
    user_id: str
    tier: str
    name: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"hash": self.key_hash, "user_id": self.user_id, "tier": self.tier}
        if self.name:
            out["name"] = self.name
        return out


def generate_key() -> str:
    """A fresh gateway key (shown once to its owner, then only its hash is kept)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, pepper: bytes = b"") -> str:
    """The stored form of `key`: keyed with the pepper when there is one."""
    if pepper:
        return "hmac-sha256:" + hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """Looks callers up by the hash of the key they present."""

    def __init__(self, keys: Iterable[GatewayKey], *, pepper: bytes = b"") -> None:
        self._pepper = pepper
        self._by_hash: dict[str, GatewayKey] = {}
        for key in keys:
            scheme = key.key_hash.partition(":")[0]
            if scheme not in _SCHEMES:
                raise ConfigError(f"gateway key {key.name or key.user_id!r}: hash must start "
                                  f"with sha256: or hmac-sha256:")
            if scheme == "hmac-sha256" and not pepper:
                raise ConfigError(f"gateway key {key.name or key.user_id!r} is an "
                                  f"hmac-sha256 hash: set GUARDSTREAM_GATEWAY_KEY_PEPPER")
            self._by_hash[key.key_hash.lower()] = key

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def tiers(self) -> set[str]:
        return {key.tier for key in self._by_hash.values()}

    def authenticate(self, presented: str) -> GatewayKey | None:
        """The key's owner, or None. Both hash forms are tried: plain SHA-256 entries keep
        working after a pepper is introduced, so keys can be migrated one by one."""
        if not presented or len(presented) > 512:
            return None
        found = self._by_hash.get(hash_key(presented))
        if found is None and self._pepper:
            found = self._by_hash.get(hash_key(presented, self._pepper))
        return found

    @classmethod
    def load(cls, path: str | Path, *, pepper: bytes = b"") -> KeyStore:
        """Read a keys file; ConfigError names the file and entry that is wrong."""
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read gateway keys file {path}: "
                              f"{exc.strerror or type(exc).__name__}") from None
        except yaml.YAMLError:
            raise ConfigError(f"gateway keys file {path} is not valid YAML/JSON") from None
        return cls(parse_entries(raw, str(path)), pepper=pepper)


def parse_entries(raw: Any, source: str = "keys") -> list[GatewayKey]:
    """Entries from the decoded keys file (a list, or a mapping with a `keys` list)."""
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        raw = raw.get("keys") or []
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: expected a list of keys (or a mapping with `keys:`)")
    entries: list[GatewayKey] = []
    for index, item in enumerate(raw):
        where = f"{source}: keys[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where} must be a mapping with hash, user_id and tier")
        unknown = set(item) - {"hash", "user_id", "tier", "name"}
        if unknown:
            raise ConfigError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}")
        values: dict[str, str] = {}
        for name in ("hash", "user_id", "tier"):
            value = item.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}.{name} must be a non-empty string")
            values[name] = value.strip()
        label = item.get("name")
        if label is not None and not isinstance(label, str):
            raise ConfigError(f"{where}.name must be a string")
        entries.append(GatewayKey(values["hash"], values["user_id"], values["tier"], label))
    return entries
