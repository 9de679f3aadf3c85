"""Moderation category names.

Why OpenAI's names: the ``moderate`` stage can switch between this local backend and the
OpenAI moderation endpoint, and policies, findings and dashboards should not have to care
which one produced a category.
"""

from __future__ import annotations

__all__ = ["CATEGORIES"]

CATEGORIES: tuple[str, ...] = (
    "harassment",
    "hate",
    "self-harm",
    "sexual",
    "sexual/minors",
    "violence",
    "illicit",
    "profanity",
)
