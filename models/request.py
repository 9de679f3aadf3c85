"""The chat request as producers send it, parsed leniently so every problem can be answered.

Producers in any language send plain JSON. Parsing never fails once a usable `request_id`
is present: type and shape problems are collected in `problems` and the `validate` stage
turns the first one into a `blocked` result. That way the `ratelimit` stage, which runs
first, still sees typed data, and no malformed request is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ID_LENGTH", "ChatMessage", "ChatRequest", "Problem", "usable_request_id"]

MAX_ID_LENGTH = 200

_OPTIONAL_NUMBERS = {"max_tokens": int, "temperature": float}


@dataclass(frozen=True, slots=True)
class Problem:
    """A structural problem found while parsing: a stable reason code and a detail for people."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    request_id: str
    user_id: str
    messages: tuple[ChatMessage, ...]
    tier: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    client_ip: str | None = None
    problems: tuple[Problem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "messages": [m.to_dict() for m in self.messages],
        }
        for key in ("tier", "model", "max_tokens", "temperature", "response_format",
                    "client_ip"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.metadata:
            out["metadata"] = self.metadata
        if self.problems:
            out["problems"] = [[p.reason, p.detail] for p in self.problems]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatRequest:
        """Parse a request object; never raises once `usable_request_id(data)` is true."""
        problems: list[Problem] = []
        request_id = usable_request_id(data) or ""
        user_id = data.get("user_id")
        if not isinstance(user_id, str) or not user_id.strip():
            problems.append(Problem("invalid_user_id", "user_id must be a non-empty string"))
            user_id = ""
        elif len(user_id) > MAX_ID_LENGTH:
            problems.append(Problem("invalid_user_id",
                                    f"user_id is longer than {MAX_ID_LENGTH} characters"))
        messages = _parse_messages(data.get("messages"), problems)
        tier = data.get("tier")
        if tier is not None and not isinstance(tier, str):
            problems.append(Problem("invalid_tier", "tier must be a string"))
            tier = None
        model = data.get("model")
        if model is not None and not isinstance(model, str):
            problems.append(Problem("invalid_parameter", "model must be a string"))
            model = None
        numbers: dict[str, Any] = {}
        for key, kind in _OPTIONAL_NUMBERS.items():
            value = data.get(key)
            if value is None:
                numbers[key] = None
            elif isinstance(value, bool) or not isinstance(value, int | float) or (
                kind is int and not isinstance(value, int)
            ):
                problems.append(Problem("invalid_parameter", f"{key} must be a {kind.__name__}"))
                numbers[key] = None
            else:
                numbers[key] = kind(value)
        response_format = data.get("response_format")
        if response_format is not None and not isinstance(response_format, dict):
            problems.append(Problem("invalid_parameter", "response_format must be an object"))
            response_format = None
        metadata = data.get("metadata")
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, dict):
            problems.append(Problem("invalid_parameter", "metadata must be an object"))
            metadata = {}
        client_ip = data.get("client_ip")
        if client_ip is not None and not isinstance(client_ip, str):
            problems.append(Problem("invalid_parameter", "client_ip must be a string"))
            client_ip = None
        carried = data.get("problems")
        if isinstance(carried, list):
            problems = [Problem(str(p[0]), str(p[1])) for p in carried
                        if isinstance(p, list) and len(p) == 2] + problems
        return cls(
            request_id=request_id,
            user_id=user_id,
            messages=messages,
            tier=tier,
            model=model,
            max_tokens=numbers["max_tokens"],
            temperature=numbers["temperature"],
            response_format=response_format,
            metadata=metadata,
            client_ip=client_ip,
            problems=tuple(problems),
        )


def usable_request_id(data: object) -> str | None:
    """The request id if the object has one a result can be keyed by, else None."""
    if not isinstance(data, dict):
        return None
    value = data.get("request_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        return None
    return value


def _parse_messages(raw: object, problems: list[Problem]) -> tuple[ChatMessage, ...]:
    if raw is None or raw == []:
        problems.append(Problem("empty_messages", "messages must be a non-empty list"))
        return ()
    if not isinstance(raw, list):
        problems.append(Problem("invalid_messages", "messages must be a list of objects"))
        return ()
    parsed: list[ChatMessage] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(Problem("invalid_messages",
                                    f"messages[{index}] must be an object with role and content"))
            continue
        role = item.get("role")
        if not isinstance(role, str):
            problems.append(Problem("invalid_role", f"messages[{index}].role must be a string"))
            role = ""
        content = _content_text(item.get("content"))
        if content is None:
            problems.append(Problem(
                "invalid_content",
                f"messages[{index}].content must be a string or a list of text parts",
            ))
            content = ""
        parsed.append(ChatMessage(role=role, content=content))
    return tuple(parsed)


def _content_text(content: object) -> str | None:
    """Plain text of a message: a string, or OpenAI's list of `{"type": "text"}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts: list[str] = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"
                    and isinstance(part.get("text"), str)):
                return None
            texts.append(part["text"])
        return "\n".join(texts)
    return None
