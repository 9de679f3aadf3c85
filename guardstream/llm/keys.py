"""Where the provider API key comes from: environment, a mounted file, AWS Secrets Manager
or HashiCorp Vault.

Why an interface with a cache instead of reading `OPENAI_API_KEY` once: keys are rotated.
Every provider caches the key and re-reads it after `refresh_seconds`, so a rotated key
is picked up without restarting workers, and the client calls `invalidate(rejected)` after
a 401 so the next `get()` fetches again at once (a key revoked before the refresh interval
ran out costs one failed call, not an outage).

A key never appears in a log line, an exception message or a `repr`: providers log only
their kind and the exception *type* of a failed fetch. Separate keys per environment are a
deployment matter: point each environment's workers at its own secret (file path, AWS
secret id, Vault path); nothing here shares keys across environments.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardstream.errors import ConfigError, DependencyError

if TYPE_CHECKING:
    from guardstream.settings import Settings

__all__ = [
    "PLACEHOLDER_KEY",
    "PROVIDER_KINDS",
    "AwsSecretsManagerKeyProvider",
    "CachedKeyProvider",
    "EnvKeyProvider",
    "FileKeyProvider",
    "KeyProvider",
    "KeyUnavailable",
    "StaticKeyProvider",
    "VaultKeyProvider",
    "key_provider_from_settings",
]

log = logging.getLogger("guardstream.llm.keys")

#: Sent when no key is configured but a base URL is (local models accept anything, and the
#: SDK refuses to run without some key).
PLACEHOLDER_KEY = "guardstream-no-key"
PROVIDER_KINDS = ("env", "file", "aws", "vault")

# After a failed refresh with a key still cached, try again this soon rather than after a
# whole refresh interval: the secret store may be back in a moment.
_RETRY_FAILED_REFRESH_SECONDS = 5.0


class KeyUnavailable(DependencyError):
    """No key could be fetched and none is cached. The message names the provider only."""


class KeyProvider(ABC):
    """Gives the current API key; `invalidate` forces the next `get` to fetch again."""

    kind: str = "key"

    @abstractmethod
    async def get(self) -> str:
        """The key to use now (cached; fetched when missing, stale or invalidated)."""

    @abstractmethod
    def invalidate(self, rejected: str | None = None) -> None:
        """Drop the cached key (only if it is `rejected`, when given: after a 401 many
        concurrent calls report the same key and one re-fetch is enough)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind}>"


class StaticKeyProvider(KeyProvider):
    """A fixed key: the placeholder for local models, or a key given in code by tests."""

    kind = "static"

    def __init__(self, key: str = PLACEHOLDER_KEY) -> None:
        self._key = key

    async def get(self) -> str:
        return self._key

    def invalidate(self, rejected: str | None = None) -> None:
        """A static key cannot be re-fetched; the caller's single retry will fail again."""


class CachedKeyProvider(KeyProvider):
    """Caches what `_fetch` returns for `refresh_seconds`; one fetch at a time."""

    def __init__(self, *, refresh_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._key: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how often the backend was asked; tests and metrics read it

    @abstractmethod
    def _fetch_sync(self) -> str:
        """Read the key from the backend (blocking; runs in a thread)."""

    async def _fetch(self) -> str:
        return await asyncio.to_thread(self._fetch_sync)

    async def get(self) -> str:
        key = self._key
        if key is not None and self._clock() < self._expires:
            return key
        async with self._lock:
            if self._key is not None and self._clock() < self._expires:
                return self._key
            return await self._refresh()

    async def _refresh(self) -> str:
        self.fetches += 1
        try:
            fetched = _clean(await self._fetch())
        except Exception as exc:
            # The exception text may quote the secret (a parse error on its value): only
            # the type is ever logged or re-raised.
            if self._key is not None:
                log.warning("refreshing the API key from %s failed (%s); keeping the cached "
                            "key", self.kind, type(exc).__name__)
                self._expires = self._clock() + min(self.refresh_seconds,
                                                    _RETRY_FAILED_REFRESH_SECONDS)
                return self._key
            raise KeyUnavailable(f"the {self.kind} key provider could not provide an API key "
                                 f"({type(exc).__name__})") from None
        if self._key is not None and fetched != self._key:
            log.info("the API key from %s changed; using the new key", self.kind)
        self._key = fetched
        self._expires = self._clock() + self.refresh_seconds
        return fetched

    def invalidate(self, rejected: str | None = None) -> None:
        if rejected is None or rejected == self._key:
            self._expires = 0.0


class EnvKeyProvider(CachedKeyProvider):
    """`OPENAI_API_KEY` from the environment (development, or keys injected by a platform)."""

    kind = "env"

    def __init__(self, env: Mapping[str, str] | None = None, *, name: str = "OPENAI_API_KEY",
                 refresh_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(refresh_seconds=refresh_seconds, clock=clock)
        self._env = os.environ if env is None else env
        self._name = name

    async def _fetch(self) -> str:
        return self._fetch_sync()  # a dict lookup: no thread needed

    def _fetch_sync(self) -> str:
        value = self._env.get(self._name)
        if not value:
            raise LookupError("variable not set")
        return value


class FileKeyProvider(CachedKeyProvider):
    """A mounted secret file (Kubernetes/Docker secret); re-read every `refresh_seconds`.

    Kubernetes updates mounted secrets in place (an atomic symlink swap), so re-reading the
    path is all rotation needs.
    """

    kind = "file"

    def __init__(self, path: str | Path, *, refresh_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(refresh_seconds=refresh_seconds, clock=clock)
        self.path = Path(path)

    def _fetch_sync(self) -> str:
        return self.path.read_text(encoding="utf-8")


class AwsSecretsManagerKeyProvider(CachedKeyProvider):
    """A secret in AWS Secrets Manager (`pip install guardstream[aws]`).

    The secret string is either the key itself or a JSON object holding it under `field`
    (`{"api_key": "sk-..."}`, the usual shape). Credentials come from boto3's normal chain
    (instance role, IRSA, environment).
    """

    kind = "aws"

    def __init__(self, secret_id: str, *, region: str | None = None, field: str = "api_key",
                 client: Any = None, refresh_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(refresh_seconds=refresh_seconds, clock=clock)
        self.secret_id = secret_id
        self.region = region
        self.field = field
        self._client = client

    def _boto_client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise ConfigError("GUARDSTREAM_KEY_PROVIDER=aws needs boto3: "
                                  "pip install 'guardstream[aws]'") from None
            self._client = boto3.client("secretsmanager", region_name=self.region)
        return self._client

    def _fetch_sync(self) -> str:
        response = self._boto_client().get_secret_value(SecretId=self.secret_id)
        secret = response.get("SecretString")
        if not isinstance(secret, str):
            raise LookupError("the secret has no SecretString")
        return _field_or_whole(secret, self.field)


class VaultKeyProvider(CachedKeyProvider):
    """A key in HashiCorp Vault's KV version 2 engine (`pip install guardstream[vault]`).

    Reads `<mount>/data/<path>` with hvac and takes `field` from the secret's data. The
    Vault token comes from settings (VAULT_TOKEN); renewing it is the Vault agent's job.
    """

    kind = "vault"

    def __init__(self, addr: str, path: str, *, token: str | None = None,
                 mount: str = "secret", field: str = "api_key", namespace: str | None = None,
                 client: Any = None, refresh_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(refresh_seconds=refresh_seconds, clock=clock)
        self.addr = addr
        self.path = path
        self.mount = mount
        self.field = field
        self.namespace = namespace
        self._token = token
        self._client = client

    def _hvac_client(self) -> Any:
        if self._client is None:
            try:
                import hvac
            except ImportError:
                raise ConfigError("GUARDSTREAM_KEY_PROVIDER=vault needs hvac: "
                                  "pip install 'guardstream[vault]'") from None
            self._client = hvac.Client(url=self.addr, token=self._token,
                                       namespace=self.namespace, timeout=10)
        return self._client

    def _fetch_sync(self) -> str:
        response = self._hvac_client().secrets.kv.v2.read_secret_version(
            path=self.path, mount_point=self.mount, raise_on_deleted_version=True)
        data = ((response or {}).get("data") or {}).get("data") or {}
        value = data.get(self.field)
        if not isinstance(value, str):
            raise LookupError("the secret has no such field")
        return value

    def __repr__(self) -> str:
        return f"<VaultKeyProvider kind=vault addr={self.addr} path={self.path}>"


def key_provider_from_settings(settings: Settings, *, refresh_seconds: float,
                               env: Mapping[str, str] | None = None) -> KeyProvider:
    """The provider `GUARDSTREAM_KEY_PROVIDER` asks for.

    With `env` (the default) and no `OPENAI_API_KEY`, a configured base URL gets the
    placeholder key: local OpenAI-compatible servers (the dev model, vLLM, Ollama) need
    none, and the SDK insists on one.
    """
    env = os.environ if env is None else env
    kind = settings.key_provider
    if kind == "env":
        if not env.get("OPENAI_API_KEY"):
            if settings.openai_base_url is not None:
                return StaticKeyProvider(PLACEHOLDER_KEY)
            raise ConfigError("no API key: set OPENAI_API_KEY, OPENAI_BASE_URL for a local "
                              "model, or GUARDSTREAM_KEY_PROVIDER=file|aws|vault")
        return EnvKeyProvider(env, refresh_seconds=refresh_seconds)
    if kind == "file":
        if not settings.key_file:
            raise ConfigError("GUARDSTREAM_KEY_PROVIDER=file needs GUARDSTREAM_KEY_FILE")
        return FileKeyProvider(settings.key_file, refresh_seconds=refresh_seconds)
    if kind == "aws":
        if not settings.key_aws_secret_id:
            raise ConfigError("GUARDSTREAM_KEY_PROVIDER=aws needs GUARDSTREAM_KEY_AWS_SECRET_ID")
        return AwsSecretsManagerKeyProvider(settings.key_aws_secret_id,
                                            region=settings.key_aws_region,
                                            field=settings.key_secret_field,
                                            refresh_seconds=refresh_seconds)
    if kind == "vault":
        if not settings.key_vault_addr or not settings.key_vault_path:
            raise ConfigError("GUARDSTREAM_KEY_PROVIDER=vault needs VAULT_ADDR and "
                              "GUARDSTREAM_KEY_VAULT_PATH")
        return VaultKeyProvider(settings.key_vault_addr, settings.key_vault_path,
                                token=settings.key_vault_token,
                                mount=settings.key_vault_mount,
                                field=settings.key_secret_field,
                                namespace=settings.key_vault_namespace,
                                refresh_seconds=refresh_seconds)
    raise ConfigError(f"GUARDSTREAM_KEY_PROVIDER must be one of {', '.join(PROVIDER_KINDS)}")


def _clean(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("the key is not a string")
    key = value.strip()
    if not key or any(c.isspace() for c in key) or not key.isprintable():
        raise ValueError("the key is empty or not one printable token")
    return key


def _field_or_whole(secret: str, field: str) -> str:
    """`{"api_key": "..."}` -> the field; anything that is not a JSON object -> itself."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError("the secret looks like JSON but does not parse") from None
        value = data.get(field) if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise LookupError("the secret has no such field")
        return value
    return text
