"""Offline content moderation: category scores for a text, no network, a few ms on a CPU.

The ``moderate`` stage wraps this as its local backend (the OpenAI moderation endpoint is
the other backend); category names follow OpenAI's so policies work with either.
"""

from __future__ import annotations

from .categories import CATEGORIES
from .local import LocalModerator
from .scores import ModerationScores

__all__ = ["CATEGORIES", "LocalModerator", "ModerationScores"]
