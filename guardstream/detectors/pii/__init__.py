"""PII and secrets redaction built on Microsoft Presidio, fully offline.

Used by the ``redact`` stage (user messages) and the ``output`` stage (the model's answer).
See :mod:`.engine` for the design and ``scripts/eval_redact.py`` for the measurements.
"""

from .engine import DEFAULT_ENTITIES, PiiConfig, PiiEngine, PiiSpan, Redaction
from .operators import OperatorSpec, PlaceholderState, decrypt_token
from .recognizers import ALL_ENTITIES, SECRET_ENTITIES, STRUCTURED_ENTITIES

__all__ = [
    "ALL_ENTITIES",
    "DEFAULT_ENTITIES",
    "SECRET_ENTITIES",
    "STRUCTURED_ENTITIES",
    "OperatorSpec",
    "PiiConfig",
    "PiiEngine",
    "PiiSpan",
    "PlaceholderState",
    "Redaction",
    "decrypt_token",
]
