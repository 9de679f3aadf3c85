"""Settings from the environment: read once, validated with clear errors."""

from __future__ import annotations

import pytest

from guardstream.errors import ConfigError
from guardstream.settings import Settings


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.broker is None
    assert settings.topic_prefix == "guardstream"
    assert settings.bootstrap_servers == ["127.0.0.1:9092"]
    assert not settings.provider_configured
    assert settings.agent_concurrency == 128
    assert settings.fetch_max_wait_ms == 25


def test_broker_list_and_provider() -> None:
    settings = Settings.from_env({"GUARDSTREAM_BROKER": "kafka://a:9092,kafka://b:9093",
                                  "OPENAI_BASE_URL": "http://localhost:8000/v1",
                                  "GUARDSTREAM_TOPIC_PREFIX": "acme"})
    assert settings.bootstrap_servers == ["a:9092", "b:9093"]
    assert settings.provider_configured
    assert settings.topic_prefix == "acme"


@pytest.mark.parametrize(("env", "message"), [
    ({"GUARDSTREAM_BROKER": "localhost"}, "GUARDSTREAM_BROKER"),
    ({"GUARDSTREAM_PARTITIONS": "many"}, "GUARDSTREAM_PARTITIONS"),
    ({"GUARDSTREAM_PARTITIONS": "0"}, "GUARDSTREAM_PARTITIONS"),
    ({"GUARDSTREAM_FETCH_MAX_WAIT_MS": "soon"}, "GUARDSTREAM_FETCH_MAX_WAIT_MS"),
    ({"GUARDSTREAM_FETCH_MAX_WAIT_MS": "0"}, "GUARDSTREAM_FETCH_MAX_WAIT_MS"),
    ({"GUARDSTREAM_ENV": "prod"}, "GUARDSTREAM_ENV"),
    ({"GUARDSTREAM_ENV": "production", "GUARDSTREAM_AUDIT_KEY": "k",
      "GUARDSTREAM_DEBUG_CONTENT": "1"}, "DEBUG_CONTENT"),
    ({"GUARDSTREAM_ENV": "production"}, "GUARDSTREAM_AUDIT_KEY"),
    ({"GUARDSTREAM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "SECURITY_PROTOCOL"),
])
def test_invalid_settings_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_the_fetch_wait_is_one_setting_for_every_consumer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings and the Faust transport (which no Settings reaches) read it the same way."""
    from guardstream.settings import fetch_max_wait_ms

    assert Settings.from_env({"GUARDSTREAM_FETCH_MAX_WAIT_MS": "500"}).fetch_max_wait_ms == 500
    monkeypatch.setenv("GUARDSTREAM_FETCH_MAX_WAIT_MS", "40")
    assert fetch_max_wait_ms() == 40 == Settings.from_env().fetch_max_wait_ms
    monkeypatch.delenv("GUARDSTREAM_FETCH_MAX_WAIT_MS")
    assert fetch_max_wait_ms() == 25


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env({"GUARDSTREAM_KAFKA_SASL_PASSWORD": "hunter2-secret",
                                  "GUARDSTREAM_AUDIT_KEY": "audit-secret"})
    assert "hunter2-secret" not in repr(settings)
    assert "audit-secret" not in repr(settings)
