"""The redact stage's PII/secrets engine findings, sorted into the output policy's classes.

The engine reports entity types; the output policy rules classes: secrets (API keys,
tokens, passwords) are `secrets`, an IP address in a private range is `private_ips` (so
`private_ips: off` really lets it through), and everything else is `pii`. Documentation
stand-ins are dropped: `alice@example.com`, `203.0.113.7` and `user:password@` belong to
nobody.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardstream.detectors.pii import SECRET_ENTITIES, PiiSpan
from guardstream.output.patterns import (
    is_documentation_domain,
    is_placeholder_secret,
    is_private_address,
)
from guardstream.output.spans import Span

__all__ = ["classify_pii_spans"]

_SECRETS = frozenset(SECRET_ENTITIES)
_DOC_IPS = ("192.0.2.", "198.51.100.", "203.0.113.")


def classify_pii_spans(text: str, spans: Iterable[PiiSpan]) -> list[Span]:
    """Engine spans over `text` as output spans, documentation stand-ins left out."""
    out: list[Span] = []
    for span in spans:
        value = text[span.start:span.end]
        etype = span.entity_type
        layer = f"pii:{span.recognizer}"
        if etype == "EMAIL_ADDRESS":
            if is_documentation_domain(value.rpartition("@")[2]):
                continue
            out.append(Span("pii", etype, span.start, span.end, span.score, layer))
        elif etype in _SECRETS:
            if etype in ("PASSWORD", "API_KEY") and is_placeholder_secret(value):
                continue
            out.append(Span("secrets", etype, span.start, span.end, span.score, layer))
        elif etype == "IP_ADDRESS":
            host = value.strip().strip("[]")
            if host.startswith(_DOC_IPS) or host.lower().startswith("2001:db8:"):
                continue
            if is_private_address(host):
                out.append(Span("private_ips", "PRIVATE_IP", span.start, span.end,
                                span.score, layer))
            elif host not in ("0.0.0.0", "::"):  # noqa: S104 - a value compared, not bound
                out.append(Span("pii", etype, span.start, span.end, span.score, layer))
        else:
            out.append(Span("pii", etype, span.start, span.end, span.score, layer))
    return out
