"""One root exception and a few groups. A blocked prompt is a result, never an exception."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DecodeError",
    "DependencyError",
    "GuardstreamError",
    "PolicyError",
    "UpstreamError",
    "UpstreamTimeout",
]


class GuardstreamError(Exception):
    """Root of every error guardstream raises on purpose."""


class ConfigError(GuardstreamError):
    """Settings from the environment are missing or invalid."""


class PolicyError(ConfigError):
    """The policy YAML is invalid; the message names the bad key."""


class DecodeError(GuardstreamError):
    """Bytes from a topic or stdin could not be decoded into a model."""


class DependencyError(GuardstreamError):
    """A service a stage depends on (Redis, the broker) is unreachable or misbehaving."""


class UpstreamError(GuardstreamError):
    """The LLM provider failed after retries, or refused the call."""


class UpstreamTimeout(UpstreamError):
    """The LLM provider did not answer in time."""
