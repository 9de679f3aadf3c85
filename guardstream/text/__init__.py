"""Unicode text checks for the validate stage: inspection, sanitization, confusables.

Pure functions without Kafka or policy objects, so they can be tested (and reused by
other stages) on plain strings:

- `inspect_text(text, max_zero_width_run=2) -> TextIssue | None`: the first thing that
  hides or reorders text (lone surrogates, control characters, bidi overrides, tag
  characters, zero-width runs or zero-width characters splitting a word).
- `sanitize(text, max_whitespace_run=64, max_newline_run=4) -> Sanitized`: strip NUL and
  soft hyphens, NFKC outside emoji, cut absurd whitespace and newline runs.
- `find_confusables(text) -> tuple[ConfusableWord, ...]`: mixed-script look-alike words.
- `warm()`: build the confusable tables now (a stage's `start`), not on a request.
"""

from guardstream.text.chars import EMOJI_SEQUENCE, format_code_points, mask_emoji
from guardstream.text.confusables import LOOKALIKES, ConfusableWord, find_confusables, warm
from guardstream.text.inspect import TextIssue, inspect_text
from guardstream.text.sanitize import Sanitized, sanitize

__all__ = [
    "EMOJI_SEQUENCE",
    "LOOKALIKES",
    "ConfusableWord",
    "Sanitized",
    "TextIssue",
    "find_confusables",
    "format_code_points",
    "inspect_text",
    "mask_emoji",
    "sanitize",
    "warm",
]
