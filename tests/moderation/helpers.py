"""Helpers for moderation tests: resources with a given `stages.moderate` policy, and one
local model per test session (it takes about a second to load)."""

from __future__ import annotations

import functools
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import yaml

from guardstream.detectors.moderation import LocalModerator
from guardstream.models import ChatMessage, ChatRequest, Envelope
from guardstream.moderation.local import LOCAL_MODERATOR_KEY
from guardstream.resources import Resources
from guardstream.settings import Settings

__all__ = ["envelope", "local_model", "make_resources"]


@functools.cache
def local_model() -> LocalModerator:
    return LocalModerator()


def make_resources(directory: Path, moderate: dict[str, Any] | None = None,
                   *, openai_base_url: str | None = None) -> Resources:
    """Resources whose policy is the packaged default with `stages.moderate` replaced."""
    text = package_files.files("guardstream").joinpath("default_policy.yaml").read_text()
    data = yaml.safe_load(text)
    data["stages"]["moderate"] = moderate or {}
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    resources = Resources(Settings(policy_path=str(path), openai_base_url=openai_base_url))
    # Seed the process-wide model so every test does not reload it.
    resources.shared(LOCAL_MODERATOR_KEY, local_model)
    return resources


def envelope(*messages: tuple[str, str], request_id: str = "r-1") -> Envelope:
    request = ChatRequest(request_id=request_id, user_id="u-1",
                          messages=tuple(ChatMessage(role, content) for role, content in messages))
    return Envelope(request=request, received_ms=0.0)
