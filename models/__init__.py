"""The data that crosses topics: requests, envelopes, results, audit events."""

from guardstream.models.audit import AuditEvent
from guardstream.models.dead_letter import DeadLetter
from guardstream.models.envelope import Envelope
from guardstream.models.finding import Finding
from guardstream.models.request import ChatMessage, ChatRequest, Problem
from guardstream.models.result import Result, Status
from guardstream.models.usage import Usage

__all__ = [
    "AuditEvent",
    "ChatMessage",
    "ChatRequest",
    "DeadLetter",
    "Envelope",
    "Finding",
    "Problem",
    "Result",
    "Status",
    "Usage",
]
