"""Key providers: caching, refresh, invalidation after a 401, AWS (botocore Stubber) and
Vault (a local fake speaking the KV v2 read API over real HTTP), and no key in any text."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from guardstream.errors import ConfigError
from guardstream.llm.keys import (
    PLACEHOLDER_KEY,
    AwsSecretsManagerKeyProvider,
    EnvKeyProvider,
    FileKeyProvider,
    KeyUnavailable,
    StaticKeyProvider,
    VaultKeyProvider,
    key_provider_from_settings,
)
from guardstream.settings import Settings

SECRET = "sk-test-KEYMATERIAL-0123456789abcdef"
ROTATED = "sk-test-ROTATEDKEY-fedcba9876543210"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- env, file, caching


async def test_env_provider_reads_the_variable() -> None:
    env = {"OPENAI_API_KEY": SECRET}
    assert await EnvKeyProvider(env).get() == SECRET


async def test_file_provider_caches_until_the_refresh_interval(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET + "\n")  # mounted secrets often end with a newline
    clock = Clock()
    provider = FileKeyProvider(path, refresh_seconds=60, clock=clock)
    assert await provider.get() == SECRET
    path.write_text(ROTATED)
    clock.now += 59
    assert await provider.get() == SECRET  # cached
    clock.now += 2
    assert await provider.get() == ROTATED  # re-read after the interval
    assert provider.fetches == 2


async def test_invalidate_forces_a_refetch_only_for_the_rejected_key(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET)
    provider = FileKeyProvider(path, refresh_seconds=3600, clock=Clock())
    assert await provider.get() == SECRET
    path.write_text(ROTATED)
    provider.invalidate("some-other-key")  # a stale report about an older key
    assert await provider.get() == SECRET
    provider.invalidate(SECRET)
    assert await provider.get() == ROTATED
    assert provider.fetches == 2


async def test_a_failed_refresh_keeps_the_cached_key(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET)
    clock = Clock()
    provider = FileKeyProvider(path, refresh_seconds=10, clock=clock)
    assert await provider.get() == SECRET
    path.unlink()
    clock.now += 11
    assert await provider.get() == SECRET
    path.write_text(ROTATED)
    clock.now += 6  # a failed refresh is retried within seconds, not a whole interval
    assert await provider.get() == ROTATED


@pytest.mark.parametrize("content", ["", "   \n", "two words", "sk-\x00bad"])
async def test_unusable_key_files_are_refused_without_quoting_them(
        tmp_path: Path, content: str) -> None:
    path = tmp_path / "key"
    path.write_text(content)
    with pytest.raises(KeyUnavailable) as info:
        await FileKeyProvider(path).get()
    assert "file" in str(info.value)
    if content.strip():
        assert content.strip() not in str(info.value)


async def test_missing_file_names_the_provider_only(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match="file key provider"):
        await FileKeyProvider(tmp_path / "absent").get()


async def test_concurrent_gets_fetch_once(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "key"
    path.write_text(SECRET)
    provider = FileKeyProvider(path)
    keys = await asyncio.gather(*(provider.get() for _ in range(20)))
    assert set(keys) == {SECRET}
    assert provider.fetches == 1


async def test_no_key_in_repr_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "key"
    path.write_text(SECRET)
    clock = Clock()
    provider = FileKeyProvider(path, refresh_seconds=1, clock=clock)
    await provider.get()
    path.write_text(ROTATED)
    clock.now += 2
    await provider.get()  # logs "changed"
    path.write_text("not a key at all " + SECRET)
    clock.now += 2
    await provider.get()  # logs a failed refresh
    texts = [repr(provider), caplog.text, repr(StaticKeyProvider(SECRET))]
    for text in texts:
        assert SECRET not in text and ROTATED not in text
    assert "changed" in caplog.text and "ValueError" in caplog.text


# ---------------------------------------------------------------- AWS Secrets Manager


def _stubbed_secretsmanager(responses: list[dict[str, Any]]) -> tuple[Any, Any]:
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    client = boto3.client("secretsmanager", region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    stubber = Stubber(client)
    for response in responses:
        if "error" in response:
            stubber.add_client_error("get_secret_value", service_error_code=response["error"],
                                     http_status_code=400,
                                     expected_params={"SecretId": "prod/llm/openai"})
        else:
            stubber.add_response("get_secret_value", {
                "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/llm/openai-Ab",
                "Name": "prod/llm/openai", **response}, {"SecretId": "prod/llm/openai"})
    stubber.activate()
    return client, stubber


@pytest.mark.parametrize(("secret_string", "field"), [
    (json.dumps({"api_key": SECRET, "org": "x"}), "api_key"),
    (json.dumps({"openai": SECRET}), "openai"),
    (SECRET, "api_key"),  # a plain string secret is the key itself
])
async def test_aws_provider_reads_the_secret(secret_string: str, field: str) -> None:
    client, stubber = _stubbed_secretsmanager([{"SecretString": secret_string}])
    provider = AwsSecretsManagerKeyProvider("prod/llm/openai", field=field, client=client)
    assert await provider.get() == SECRET
    stubber.assert_no_pending_responses()


async def test_aws_provider_rotation_and_errors() -> None:
    client, stubber = _stubbed_secretsmanager([
        {"SecretString": json.dumps({"api_key": SECRET})},
        {"error": "ThrottlingException"},
        {"SecretString": json.dumps({"api_key": ROTATED})},
    ])
    clock = Clock()
    provider = AwsSecretsManagerKeyProvider("prod/llm/openai", client=client,
                                            refresh_seconds=30, clock=clock)
    assert await provider.get() == SECRET
    clock.now += 31
    assert await provider.get() == SECRET  # throttled: keep the cached key
    clock.now += 6
    assert await provider.get() == ROTATED
    stubber.assert_no_pending_responses()


async def test_aws_provider_missing_field_is_unavailable() -> None:
    client, _ = _stubbed_secretsmanager([{"SecretString": json.dumps({"other": SECRET})}])
    with pytest.raises(KeyUnavailable) as info:
        await AwsSecretsManagerKeyProvider("prod/llm/openai", client=client).get()
    assert SECRET not in str(info.value)


# ---------------------------------------------------------------- Vault KV v2 (local fake)


class _FakeVault(BaseHTTPRequestHandler):
    """Vault's KV v2 read: GET /v1/<mount>/data/<path> with X-Vault-Token."""

    token = "s.vault-test-token"
    secrets: ClassVar[dict[str, dict[str, str]]] = {}
    reads: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        prefix = "/v1/"
        mount, _, rest = self.path.removeprefix(prefix).partition("/data/")
        self.reads.append(self.path)
        if self.headers.get("X-Vault-Token") != self.token:
            self._send(403, {"errors": ["permission denied"]})
            return
        data = self.secrets.get(f"{mount}:{rest}")
        if data is None:
            self._send(404, {"errors": []})
            return
        self._send(200, {
            "request_id": "0b0e4bd7-0000", "lease_id": "", "renewable": False,
            "lease_duration": 0, "wrap_info": None, "warnings": None, "auth": None,
            "data": {"data": data, "metadata": {
                "created_time": "2025-01-01T00:00:00.000000Z", "custom_metadata": None,
                "deletion_time": "", "destroyed": False, "version": 3}},
        })

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_vault() -> Iterator[str]:
    pytest.importorskip("hvac")
    _FakeVault.secrets = {"secret:guardstream/openai": {"api_key": SECRET}}
    _FakeVault.reads = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeVault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_vault_provider_reads_kv_v2_and_picks_up_rotation(fake_vault: str) -> None:
    clock = Clock()
    provider = VaultKeyProvider(fake_vault, "guardstream/openai", token=_FakeVault.token,
                                refresh_seconds=60, clock=clock)
    assert await provider.get() == SECRET
    assert _FakeVault.reads == ["/v1/secret/data/guardstream/openai"]
    _FakeVault.secrets["secret:guardstream/openai"] = {"api_key": ROTATED}
    provider.invalidate(SECRET)  # what the client does after a 401
    assert await provider.get() == ROTATED
    assert SECRET not in repr(provider) and _FakeVault.token not in repr(provider)


@pytest.mark.parametrize(("token", "path", "field"), [
    ("s.wrong-token", "guardstream/openai", "api_key"),   # 403
    (_FakeVault.token, "guardstream/missing", "api_key"),  # 404
    (_FakeVault.token, "guardstream/openai", "other"),     # no such field
])
async def test_vault_failures_are_unavailable_without_secrets(
        fake_vault: str, token: str, path: str, field: str) -> None:
    provider = VaultKeyProvider(fake_vault, path, token=token, field=field)
    with pytest.raises(KeyUnavailable) as info:
        await provider.get()
    assert "vault" in str(info.value)
    assert SECRET not in str(info.value) and token not in str(info.value)


# ---------------------------------------------------------------- choosing from settings


@pytest.mark.parametrize(("env", "expected"), [
    ({"OPENAI_API_KEY": SECRET}, EnvKeyProvider),
    ({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, StaticKeyProvider),
    ({"GUARDSTREAM_KEY_PROVIDER": "file", "GUARDSTREAM_KEY_FILE": "/run/secrets/openai"},
     FileKeyProvider),
    ({"GUARDSTREAM_KEY_PROVIDER": "aws", "GUARDSTREAM_KEY_AWS_SECRET_ID": "prod/llm"},
     AwsSecretsManagerKeyProvider),
    ({"GUARDSTREAM_KEY_PROVIDER": "vault", "VAULT_ADDR": "http://127.0.0.1:8200",
      "GUARDSTREAM_KEY_VAULT_PATH": "guardstream/openai"}, VaultKeyProvider),
])
async def test_provider_from_settings(env: dict[str, str], expected: type) -> None:
    settings = Settings.from_env(env)
    provider = key_provider_from_settings(settings, refresh_seconds=5, env=env)
    assert type(provider) is expected
    if expected is StaticKeyProvider:
        assert await provider.get() == PLACEHOLDER_KEY
    if env.get("GUARDSTREAM_KEY_PROVIDER"):
        assert settings.provider_configured  # `up` must not start the dev model then


@pytest.mark.parametrize("env", [
    {},
    {"GUARDSTREAM_KEY_PROVIDER": "file"},
    {"GUARDSTREAM_KEY_PROVIDER": "aws"},
    {"GUARDSTREAM_KEY_PROVIDER": "vault", "VAULT_ADDR": "http://127.0.0.1:8200"},
])
def test_incomplete_key_settings_are_config_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        key_provider_from_settings(Settings.from_env(env), refresh_seconds=5, env=env)


def test_unknown_provider_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GUARDSTREAM_KEY_PROVIDER"):
        Settings.from_env({"GUARDSTREAM_KEY_PROVIDER": "keychain"})


def test_vault_token_is_not_in_the_settings_repr() -> None:
    settings = Settings.from_env({"VAULT_TOKEN": "s.supersecret-vault-token"})
    assert settings.key_vault_token == "s.supersecret-vault-token"
    assert "supersecret" not in repr(settings)
