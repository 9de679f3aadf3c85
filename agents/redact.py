"""Stage redact: PII and secrets never reach the provider.

The engine is Presidio with guardstream's recognizers (`guardstream.detectors.pii`), built
once per process and shared with the output stage. All messages of a request are redacted
in one batch with one placeholder numbering, so `<EMAIL_ADDRESS_1>` means the same value
everywhere in the request. With `reversible: true` the placeholder->value map is kept in
Redis under the request id for a short TTL (never in a topic, never logged) so the output
stage can restore the values in the final answer.

Finding runs through a `Batcher`: the texts of requests that arrive while the engine is
busy are analysed in one call (spaCy NER is cheaper per text in a batch); placeholders
are then applied per request.
"""

from __future__ import annotations

from guardstream.agents.base import Stage, Verdict
from guardstream.batching import Batcher
from guardstream.detectors.pii import PiiEngine, PiiSpan, PlaceholderState, Redaction
from guardstream.detectors.pii.policy import build_pii_engine
from guardstream.models import ChatMessage, Envelope, Finding

__all__ = ["VAULT_KEY", "RedactStage", "vault_key"]

VAULT_KEY = "guardstream:{{vault}}:{request_id}"

_ACTIONS = {"replace": "redacted", "mask": "masked", "hash": "hashed", "encrypt": "encrypted",
            "keep": "kept"}


def vault_key(request_id: str) -> str:
    """The Redis hash holding one request's placeholder->value map (cluster-safe tag)."""
    return VAULT_KEY.format(request_id=request_id)


class RedactStage(Stage):
    name = "redact"

    async def start(self) -> None:
        config = self.policy.stages.redact
        self.engine: PiiEngine = await self.resources.run_cpu(
            self.resources.shared, "pii_engine",
            lambda: build_pii_engine(config))
        self._operators = {entity: spec.kind for entity, spec in
                           self.engine.config.operators.items()}
        self._finder: Batcher[str, list[PiiSpan]] = Batcher(
            self.engine.analyze_many, self.resources.run_cpu,
            max_items=max(1, self.settings.agent_concurrency))
        key = self.settings.redact_key
        self._hmac_key = key.encode() if key else None
        self._encrypt_key = key or None

    async def process(self, envelope: Envelope) -> Verdict:
        policy = self.policy.stages.redact
        messages = envelope.request.messages
        targets = [i for i, m in enumerate(messages) if m.role in policy.roles and m.content]
        if not targets:
            return Verdict.passed(envelope)
        texts = [messages[i].content for i in targets]
        found = await self._finder.submit(texts)
        if not any(found):
            return Verdict.passed(envelope)
        state = PlaceholderState()
        redactions: list[Redaction] = await self.resources.run_cpu(
            self._redact, texts, found, state)
        new_messages = list(messages)
        findings: list[Finding] = []
        for index, redaction in zip(targets, redactions, strict=True):
            if not redaction.spans:
                continue
            new_messages[index] = ChatMessage(messages[index].role, redaction.text)
            findings.extend(
                Finding(stage=self.name, type=span.entity_type,
                        action=self._action(span.entity_type), score=span.score,
                        message=index, start=span.start, end=span.end, layer=span.recognizer)
                for span in redaction.spans)
        if not findings:
            return Verdict.passed(envelope)
        updated = envelope.with_messages(tuple(new_messages))
        if policy.reversible:
            updated, vault_finding = await self._store_vault(updated, state)
            if vault_finding is not None:
                findings.append(vault_finding)
        return Verdict.passed(updated, tuple(findings))

    def _redact(self, texts: list[str], found: list[list[PiiSpan]],
                state: PlaceholderState) -> list[Redaction]:
        return self.engine.apply(texts, found, state, hmac_key=self._hmac_key,
                                 encrypt_key=self._encrypt_key)

    def _action(self, entity: str) -> str:
        kind = self._operators.get(entity) or self._operators.get("DEFAULT") or "replace"
        return _ACTIONS.get(kind, kind)

    async def _store_vault(self, envelope: Envelope,
                           state: PlaceholderState) -> tuple[Envelope, Finding | None]:
        mapping = state.mapping()
        if not mapping:
            return envelope, None
        key = vault_key(envelope.request_id)
        try:
            redis = self.resources.redis()
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, self.policy.stages.redact.vault_ttl_seconds)
                await pipe.execute()
        except Exception:  # Redis down: redaction still holds, values just stay placeholders
            return envelope, Finding(stage=self.name, type="vault_unavailable",
                                     action="skipped")
        return envelope.replace(vault=True), None
