"""What an output filter reports: a typed span of the answer, in a class the policy rules.

Spans carry offsets, never the value: they become `Finding`s as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CATEGORIES", "CATEGORY_REASONS", "Category", "Span"]

Category = Literal["pii", "secrets", "internal_urls", "private_ips", "file_paths",
                   "connection_strings", "system_prompt_leak"]

#: Policy classes, most specific first. When spans of several classes overlap, the merged
#: region takes the type of the first one (a connection string to an internal host is
#: reported as a connection string; a name inside an internal URL as the URL); when several
#: classes block, the first one names the result's reason.
CATEGORIES: tuple[Category, ...] = ("system_prompt_leak", "connection_strings", "secrets",
                                    "internal_urls", "private_ips", "file_paths", "pii")

#: The stable `reason` of a blocked result, per class (moderation blocks as content_policy).
CATEGORY_REASONS: dict[Category, str] = {
    "system_prompt_leak": "system_prompt_leak",
    "connection_strings": "connection_string",
    "secrets": "output_secret",
    "pii": "output_pii",
    "internal_urls": "internal_url",
    "private_ips": "private_ip",
    "file_paths": "file_path",
}


@dataclass(frozen=True, slots=True)
class Span:
    """One finding in the answer: class, type (`INTERNAL_URL`, `EMAIL_ADDRESS`...), offsets
    into the answer as the stage received it, confidence and the detector that found it."""

    category: Category
    type: str
    start: int
    end: int
    score: float = 1.0
    layer: str = "pattern"
