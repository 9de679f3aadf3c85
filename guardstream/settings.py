"""Process settings, read from the environment once and frozen.

The policy (limits, thresholds, what blocks) lives in the policy YAML; settings say where
things are (broker, Redis, provider, policy file) and how the process runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from guardstream.errors import ConfigError
from guardstream.policy import Policy, load_policy

__all__ = ["DEFAULT_FETCH_MAX_WAIT_MS", "KafkaSecurity", "Settings", "fetch_max_wait_ms"]

Environment = Literal["development", "staging", "production"]


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """SASL/TLS for real clusters; everything off for the embedded broker."""

    protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


#: The embedded broker answers a held fetch only when its wait runs out (at half the wait
#: from 250 ms up), so a record can wait that long at every hop; Kafka answers as soon as
#: records arrive, and deployments on it set 500 (docs/deployment.md).
DEFAULT_FETCH_MAX_WAIT_MS = 25


@dataclass(frozen=True)
class Settings:
    broker: str | None = None
    redis_url: str | None = None
    openai_base_url: str | None = None
    openai_key_configured: bool = False
    policy_path: str | None = None
    topic_prefix: str = "guardstream"
    partitions: int = 4
    replication_factor: int = 1
    create_topics: bool = True
    # Records in flight per stage worker. More in flight under load means more records per
    # produce request: a pass-through hop costs ~0.062 ms of CPU at 32 against ~0.089 at 8
    # (docs/performance.md); beyond 32 nothing more was gained.
    agent_concurrency: int = 128
    # How long the broker may hold a fetch that finds nothing, for every consumer the
    # gateway runs: stage workers, the client's results reader, `audit tail`, the bench.
    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS
    environment: Environment = "development"
    log_level: str = "WARNING"
    debug_content: bool = False
    audit_hmac_key: bytes = field(default=b"", repr=False)
    redact_key: str = field(default="", repr=False)
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # Where the LLM API key comes from (guardstream.llm.keys): env | file | aws | vault.
    key_provider: str = "env"
    key_file: str | None = None
    key_secret_field: str = "api_key"  # noqa: S105 - a field name, not a secret
    key_aws_secret_id: str | None = None
    key_aws_region: str | None = None
    key_vault_addr: str | None = None
    key_vault_path: str | None = None
    key_vault_mount: str = "secret"
    key_vault_namespace: str | None = None
    key_vault_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        broker = env.get("GUARDSTREAM_BROKER") or None
        if broker is not None:
            _check_broker_url(broker)
        environment = env.get("GUARDSTREAM_ENV", "development").lower()
        if environment not in ("development", "staging", "production"):
            raise ConfigError("GUARDSTREAM_ENV must be development, staging or production")
        debug_content = _flag(env, "GUARDSTREAM_DEBUG_CONTENT")
        if debug_content and environment == "production":
            raise ConfigError("GUARDSTREAM_DEBUG_CONTENT logs message content and is refused "
                              "when GUARDSTREAM_ENV=production")
        audit_key = env.get("GUARDSTREAM_AUDIT_KEY", "")
        if not audit_key and environment == "production":
            raise ConfigError("GUARDSTREAM_AUDIT_KEY must be set in production: it keys the "
                              "HMAC of user ids in audit events")
        security = KafkaSecurity(
            protocol=env.get("GUARDSTREAM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            sasl_mechanism=env.get("GUARDSTREAM_KAFKA_SASL_MECHANISM") or None,
            sasl_username=env.get("GUARDSTREAM_KAFKA_SASL_USERNAME") or None,
            sasl_password=env.get("GUARDSTREAM_KAFKA_SASL_PASSWORD") or None,
            ssl_cafile=env.get("GUARDSTREAM_KAFKA_SSL_CAFILE") or None,
            ssl_certfile=env.get("GUARDSTREAM_KAFKA_SSL_CERTFILE") or None,
            ssl_keyfile=env.get("GUARDSTREAM_KAFKA_SSL_KEYFILE") or None,
        )
        if security.protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ConfigError("GUARDSTREAM_KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, "
                              "SASL_PLAINTEXT or SASL_SSL")
        return cls(
            broker=broker,
            redis_url=env.get("REDIS_URL") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            openai_key_configured=(bool(env.get("OPENAI_API_KEY"))
                                   or _key_provider(env) != "env"),
            policy_path=env.get("GUARDSTREAM_POLICY") or None,
            topic_prefix=env.get("GUARDSTREAM_TOPIC_PREFIX", "guardstream") or "guardstream",
            partitions=_int(env, "GUARDSTREAM_PARTITIONS", 4),
            replication_factor=_int(env, "GUARDSTREAM_REPLICATION_FACTOR", 1),
            create_topics=not _flag(env, "GUARDSTREAM_PRECREATED_TOPICS"),
            agent_concurrency=_int(env, "GUARDSTREAM_CONCURRENCY", 128),
            fetch_max_wait_ms=fetch_max_wait_ms(env),
            environment=environment,  # type: ignore[arg-type]
            log_level=env.get("GUARDSTREAM_LOG_LEVEL", "WARNING").upper(),
            debug_content=debug_content,
            audit_hmac_key=audit_key.encode(),
            redact_key=env.get("GUARDSTREAM_REDACT_KEY", ""),
            kafka_security=security,
            key_provider=_key_provider(env),
            key_file=env.get("GUARDSTREAM_KEY_FILE") or None,
            key_secret_field=env.get("GUARDSTREAM_KEY_FIELD") or "api_key",
            key_aws_secret_id=env.get("GUARDSTREAM_KEY_AWS_SECRET_ID") or None,
            key_aws_region=(env.get("GUARDSTREAM_KEY_AWS_REGION") or env.get("AWS_REGION")
                            or None),
            key_vault_addr=env.get("VAULT_ADDR") or None,
            key_vault_path=env.get("GUARDSTREAM_KEY_VAULT_PATH") or None,
            key_vault_mount=env.get("GUARDSTREAM_KEY_VAULT_MOUNT") or "secret",
            key_vault_namespace=env.get("VAULT_NAMESPACE") or None,
            key_vault_token=env.get("VAULT_TOKEN") or None,
        )

    @property
    def provider_configured(self) -> bool:
        """True when the user pointed us at a real provider (else `up` starts the dev model)."""
        return self.openai_key_configured or self.openai_base_url is not None

    @property
    def bootstrap_servers(self) -> list[str]:
        broker = self.broker or "kafka://127.0.0.1:9092"
        return [part.removeprefix("kafka://") for part in broker.split(",") if part.strip()]

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.policy_path)


def fetch_max_wait_ms(env: Mapping[str, str] | None = None) -> int:
    """`GUARDSTREAM_FETCH_MAX_WAIT_MS` (default 25), validated like every other setting.

    Its own function because the Faust transport reads it where no `Settings` reaches.
    """
    return _int(os.environ if env is None else env, "GUARDSTREAM_FETCH_MAX_WAIT_MS",
                DEFAULT_FETCH_MAX_WAIT_MS)


def _check_broker_url(url: str) -> None:
    for part in url.split(","):
        host, _, port = part.strip().removeprefix("kafka://").rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(
                "GUARDSTREAM_BROKER must look like kafka://host:port[,host:port]"
            )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _key_provider(env: Mapping[str, str]) -> str:
    kind = (env.get("GUARDSTREAM_KEY_PROVIDER") or "env").strip().lower()
    if kind not in ("env", "file", "aws", "vault"):
        raise ConfigError("GUARDSTREAM_KEY_PROVIDER must be env, file, aws or vault")
    return kind
