"""Anonymization operators and the per-request placeholder state.

Why the operators are built per call: Presidio's ``OperatorConfig`` is per *entity type*,
but stable numbered placeholders (``<EMAIL_ADDRESS_1>`` for the same value across every
message of a request) are per *value*. We therefore precompute value -> replacement for the
spans of one call and hand Presidio a ``custom`` operator that looks the value up. Keys
(HMAC, AES) are passed in per call and never stored on the engine.

Every replacement we produce is wrapped in ``<...>`` so that a second pass over redacted
text recognises it as already redacted (idempotency).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.operators import Decrypt, Encrypt

__all__ = [
    "REDACTED_TOKEN",
    "OperatorKind",
    "OperatorSpec",
    "PlaceholderState",
    "build_operator_configs",
    "decrypt_token",
]

OperatorKind = Literal["replace", "mask", "hash", "encrypt", "keep"]

#: Matches anything this module produces, so a second pass can leave it alone.
REDACTED_TOKEN = re.compile(r"<[A-Z][A-Z0-9_]*(?:_\d+|:(?:hmac|enc):[A-Za-z0-9+/=_\-]+)?>")

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """One anonymization choice: ``kind`` plus operator parameters.

    * ``replace``: numbered placeholder ``<TYPE_n>``; ``params={"new_value": "..."}`` uses a
      fixed string instead.
    * ``mask``: Presidio's mask (``masking_char``, ``chars_to_mask``, ``from_end``);
      defaults mask the whole value with ``*``.
    * ``hash``: keyed HMAC-SHA256 (key passed to ``redact``), ``<TYPE:hmac:hex>``.
    * ``encrypt``: Presidio's AES ``encrypt`` (key in ``params["key"]`` or passed to
      ``redact``), ``<TYPE:enc:ciphertext>``; reverse with :func:`decrypt_token`.
    * ``keep``: leave the value (still reported as a finding).
    """

    kind: OperatorKind = "replace"
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class PlaceholderState:
    """Numbering of placeholders for one request; thread-safe.

    The same (entity type, value) gets the same placeholder across all messages of the
    request. :meth:`mapping` gives placeholder -> value for reversible pseudonymization;
    the values are sensitive: store them only where the lead decides (Redis) and never log.
    """

    __slots__ = ("_by_value", "_counters", "_lock")

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._by_value: dict[tuple[str, str], str] = {}
        self._counters: dict[str, int] = {}
        for placeholder, value in (mapping or {}).items():
            m = _PLACEHOLDER.fullmatch(placeholder)
            if m is None:
                raise ValueError("not a placeholder produced by PlaceholderState")
            etype, n = m.group(1), int(m.group(2))
            self._by_value[(etype, value)] = placeholder
            self._counters[etype] = max(self._counters.get(etype, 0), n)

    def placeholder_for(self, entity_type: str, value: str) -> str:
        """The placeholder for ``value``, allocating the next number for its type if new."""
        key = (entity_type, value)
        with self._lock:
            existing = self._by_value.get(key)
            if existing is not None:
                return existing
            n = self._counters.get(entity_type, 0) + 1
            self._counters[entity_type] = n
            placeholder = f"<{entity_type}_{n}>"
            self._by_value[key] = placeholder
            return placeholder

    def mapping(self) -> dict[str, str]:
        """placeholder -> original value (sensitive)."""
        with self._lock:
            return {p: v for (_, v), p in self._by_value.items()}

    def restore(self, text: str) -> str:
        """Put the original values back in place of known placeholders."""
        mapping = self.mapping()
        return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_value)

    def __repr__(self) -> str:  # never show values
        return f"PlaceholderState(placeholders={len(self)})"


def _hmac_hex(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _lookup(table: Mapping[str, str], fallback: str) -> Callable[[str], str]:
    def op(value: str) -> str:
        return table.get(value, fallback)

    return op


def build_operator_configs(
    spans: list[tuple[str, str]],
    operators: Mapping[str, OperatorSpec],
    state: PlaceholderState,
    *,
    hmac_key: bytes | None,
    encrypt_key: str | None,
) -> dict[str, OperatorConfig]:
    """Presidio operator configs for one call; ``spans`` are (entity type, value) in order.

    Placeholders are allocated here, in text order, so numbering is deterministic.
    """
    default = operators.get("DEFAULT", OperatorSpec())
    tables: dict[str, dict[str, str]] = {}
    for etype, value in spans:
        spec = operators.get(etype, default)
        table = tables.setdefault(etype, {})
        if value in table or spec.kind in ("mask", "keep"):
            continue
        if spec.kind == "replace":
            fixed = spec.params.get("new_value")
            table[value] = str(fixed) if fixed is not None else state.placeholder_for(etype, value)
        elif spec.kind == "hash":
            if not hmac_key:
                raise ValueError("the hash operator needs an hmac_key")
            table[value] = f"<{etype}:hmac:{_hmac_hex(hmac_key, value)}>"
        elif spec.kind == "encrypt":
            key = spec.params.get("key") or encrypt_key
            if not key:
                raise ValueError("the encrypt operator needs a key")
            cipher = Encrypt().operate(value, {"key": key})
            table[value] = f"<{etype}:enc:{cipher}>"
        else:
            raise ValueError("unknown operator kind")

    configs: dict[str, OperatorConfig] = {}
    for etype in {e for e, _ in spans} | {"DEFAULT"}:
        spec = operators.get(etype, default)
        if spec.kind == "mask":
            params = {"masking_char": "*", "chars_to_mask": 10_000, "from_end": False}
            params.update(dict(spec.params))
            configs[etype] = OperatorConfig("mask", params)
        elif spec.kind == "keep":
            configs[etype] = OperatorConfig("keep", {})
        else:
            configs[etype] = OperatorConfig(
                "custom", {"lambda": _lookup(tables.get(etype, {}), f"<{etype}>")}
            )
    return configs


def decrypt_token(token: str, key: str) -> str:
    """Reverse an ``<TYPE:enc:...>`` token produced by the ``encrypt`` operator."""
    m = re.fullmatch(r"<[A-Z][A-Z0-9_]*:enc:([A-Za-z0-9+/=_\-]+)>", token)
    if m is None:
        raise ValueError("not an encrypted token")
    return str(Decrypt().operate(m.group(1), {"key": key}))
