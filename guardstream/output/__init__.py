"""The output stage's library: the model's answer is untrusted input.

Filters (PII and secrets through the redact stage's engine, internal URLs, private IPs,
file paths, connection strings, system-prompt leaks), structured-output validation, and the
restore side of reversible pseudonymization. No Kafka here: `guardstream.agents.output`
wires it into the pipeline.
"""

from __future__ import annotations

from guardstream.output.filters import FilterOutcome, Flagged, OutputFilter, placeholder
from guardstream.output.leak import find_canary, find_prompt_overlap
from guardstream.output.patterns import (
    find_connection_strings,
    find_file_paths,
    find_internal_urls,
    find_private_ips,
    is_documentation_domain,
    is_internal_host,
    is_placeholder_secret,
    is_private_address,
)
from guardstream.output.pii import classify_pii_spans
from guardstream.output.spans import CATEGORIES, CATEGORY_REASONS, Category, Span
from guardstream.output.structured import StructuredProblem, check_structured, requested_schema
from guardstream.output.vault import (
    VAULT_KEY,
    drop_vault,
    restore_placeholders,
    take_vault,
    vault_key,
)

__all__ = [
    "CATEGORIES",
    "CATEGORY_REASONS",
    "VAULT_KEY",
    "Category",
    "FilterOutcome",
    "Flagged",
    "OutputFilter",
    "Span",
    "StructuredProblem",
    "check_structured",
    "classify_pii_spans",
    "drop_vault",
    "find_canary",
    "find_connection_strings",
    "find_file_paths",
    "find_internal_urls",
    "find_private_ips",
    "find_prompt_overlap",
    "is_documentation_domain",
    "is_internal_host",
    "is_placeholder_secret",
    "is_private_address",
    "placeholder",
    "requested_schema",
    "restore_placeholders",
    "take_vault",
    "vault_key",
]
