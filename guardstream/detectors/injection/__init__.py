"""Prompt-injection and jailbreak detection (heuristics, local classifier, similarity).

Use::

    from guardstream.detectors.injection import InjectionDetector
    det = InjectionDetector()
    result = det.scan(user_text)
    if det.is_attack(result): ...
"""

from guardstream.detectors.injection.detector import (
    DEFAULT_THRESHOLD,
    InjectionDetector,
    InjectionScore,
)
from guardstream.detectors.injection.heuristics import CATEGORIES

__all__ = ["CATEGORIES", "DEFAULT_THRESHOLD", "InjectionDetector", "InjectionScore"]
