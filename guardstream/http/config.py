"""Settings of the HTTP front door, read from the environment once and frozen.

They live here rather than in `guardstream.settings` because only `guardstream serve` reads
them; the key pepper is a secret and is kept out of `repr`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from guardstream.errors import ConfigError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_TIMEOUT_SECONDS", "HttpConfig", "Network"]

DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_TIMEOUT_SECONDS = 60.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """How `guardstream serve` answers.

    - `keys_path`: the gateway keys file (`GUARDSTREAM_GATEWAY_KEYS`).
    - `key_pepper`: secret for keyed key hashes (`GUARDSTREAM_GATEWAY_KEY_PEPPER`); when
      set, new keys are stored as HMAC-SHA-256(pepper, key), so a leaked keys file alone
      cannot be used to test guesses offline.
    - `max_body_bytes`: larger request bodies get 413 (`GUARDSTREAM_HTTP_MAX_BODY_BYTES`).
    - `timeout_seconds`: how long a request waits for its result before 504
      (`GUARDSTREAM_HTTP_TIMEOUT`).
    - `trusted_proxies`: peers whose `X-Forwarded-For` is believed
      (`GUARDSTREAM_TRUSTED_PROXIES`, comma-separated IPs or CIDRs). Empty: the TCP peer
      address is the client address.
    - `default_model`: the model named in responses when the request names none.
    """

    keys_path: str | None = None
    key_pepper: bytes = field(default=b"", repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    trusted_proxies: tuple[Network, ...] = ()
    default_model: str = "gpt-4o-mini"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 default_model: str = "gpt-4o-mini") -> HttpConfig:
        env = os.environ if env is None else env
        return cls(
            keys_path=env.get("GUARDSTREAM_GATEWAY_KEYS") or None,
            key_pepper=env.get("GUARDSTREAM_GATEWAY_KEY_PEPPER", "").encode(),
            max_body_bytes=int(_positive(env, "GUARDSTREAM_HTTP_MAX_BODY_BYTES",
                                         DEFAULT_MAX_BODY_BYTES)),
            timeout_seconds=_positive(env, "GUARDSTREAM_HTTP_TIMEOUT", DEFAULT_TIMEOUT_SECONDS),
            trusted_proxies=parse_networks(env.get("GUARDSTREAM_TRUSTED_PROXIES", "")),
            default_model=default_model,
        )


def parse_networks(raw: str) -> tuple[Network, ...]:
    """`10.0.0.1, 192.168.0.0/16` -> networks; ConfigError names the bad entry."""
    networks: list[Network] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"GUARDSTREAM_TRUSTED_PROXIES: {part!r} is not an IP address "
                              f"or CIDR network") from None
    return tuple(networks)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive")
    return value
