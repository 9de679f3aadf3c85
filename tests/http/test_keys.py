"""Gateway keys: hashed at rest, loaded from YAML/JSON, issued by `guardstream keys`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardstream.cli import main
from guardstream.errors import ConfigError
from guardstream.http import GatewayKey, HttpConfig, KeyStore, generate_key, hash_key


def test_generated_keys_are_long_random_and_prefixed() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(k.startswith("gsk_") and len(k) >= 40 for k in keys)


@pytest.mark.parametrize(("pepper", "scheme"), [(b"", "sha256:"), (b"p", "hmac-sha256:")])
def test_hashes_never_contain_the_key(pepper: bytes, scheme: str) -> None:
    key = generate_key()
    stored = hash_key(key, pepper)
    assert stored.startswith(scheme) and key not in stored
    assert stored == hash_key(key, pepper)
    assert stored != hash_key(key, pepper + b"x")


def test_a_pepper_keeps_plain_hashes_working_for_migration() -> None:
    old, new = generate_key(), generate_key()
    store = KeyStore([GatewayKey(hash_key(old), "old", "free"),
                      GatewayKey(hash_key(new, b"pep"), "new", "pro")], pepper=b"pep")
    found_old, found_new = store.authenticate(old), store.authenticate(new)
    assert found_old is not None and found_old.user_id == "old"
    assert found_new is not None and found_new.user_id == "new"
    assert store.authenticate(generate_key()) is None
    assert store.authenticate("") is None


def test_keyed_hashes_need_the_pepper() -> None:
    with pytest.raises(ConfigError, match="GUARDSTREAM_GATEWAY_KEY_PEPPER"):
        KeyStore([GatewayKey(hash_key("k", b"pep"), "u", "free")])


@pytest.mark.parametrize("content", [
    "- {hash: 'sha256:HASH', user_id: alice, tier: pro, name: laptop}\n",
    "keys:\n  - hash: sha256:HASH\n    user_id: alice\n    tier: pro\n",
    json.dumps({"keys": [{"hash": "sha256:HASH", "user_id": "alice", "tier": "pro"}]}),
])
def test_keys_files_in_yaml_or_json(tmp_path: Path, content: str) -> None:
    key = generate_key()
    path = tmp_path / "keys.yaml"
    path.write_text(content.replace("sha256:HASH", hash_key(key)))
    found = KeyStore.load(path).authenticate(key)
    assert found is not None and (found.user_id, found.tier) == ("alice", "pro")


@pytest.mark.parametrize(("content", "message"), [
    ("- {user_id: a, tier: free}", r"keys\[0\]\.hash"),
    ("- {hash: 'sha256:ab', user_id: '', tier: free}", r"keys\[0\]\.user_id"),
    ("- {hash: 'md5:ab', user_id: a, tier: free}", "sha256"),
    ("- {hash: 'sha256:ab', user_id: a, tier: free, key: oops}", "unknown field"),
    ("- just-a-string", "mapping"),
    ("keys: 5", "list"),
    ("[unclosed", "not valid"),
])
def test_bad_keys_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        KeyStore.load(path)


def test_a_missing_keys_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        KeyStore.load(tmp_path / "absent.yaml")


@pytest.mark.parametrize("pepper", ["", "server-side-pepper"])
def test_keys_create_prints_a_key_and_a_line_that_authenticates_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        pepper: str) -> None:
    monkeypatch.setenv("GUARDSTREAM_GATEWAY_KEY_PEPPER", pepper)
    assert main(["keys", "create", "--user", "alice", "--tier", "pro", "--name", "cli"]) == 0
    out = capsys.readouterr().out.splitlines()
    key = out[0].removeprefix("key: ")
    entry = next(line for line in out if line.startswith("- "))
    assert key not in entry
    path = tmp_path / "keys.yaml"
    path.write_text(entry + "\n")
    found = KeyStore.load(path, pepper=pepper.encode()).authenticate(key)
    assert found is not None and (found.user_id, found.tier, found.name) == ("alice", "pro",
                                                                            "cli")


def test_keys_create_refuses_unknown_tiers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--user", "alice", "--tier", "platinum"]) == 2
    assert "platinum" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "field", "value"), [
    ({}, "max_body_bytes", 1_048_576),
    ({"GUARDSTREAM_HTTP_MAX_BODY_BYTES": "2048"}, "max_body_bytes", 2048),
    ({"GUARDSTREAM_HTTP_TIMEOUT": "2.5"}, "timeout_seconds", 2.5),
    ({"GUARDSTREAM_GATEWAY_KEYS": "/k.yaml"}, "keys_path", "/k.yaml"),
])
def test_http_config_from_env(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(HttpConfig.from_env(env), field) == value


@pytest.mark.parametrize("env", [
    {"GUARDSTREAM_HTTP_TIMEOUT": "0"},
    {"GUARDSTREAM_HTTP_MAX_BODY_BYTES": "lots"},
    {"GUARDSTREAM_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"},
])
def test_bad_http_config_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        HttpConfig.from_env(env)


def test_the_pepper_is_not_in_repr() -> None:
    config = HttpConfig.from_env({"GUARDSTREAM_GATEWAY_KEY_PEPPER": "very-secret"})
    assert "very-secret" not in repr(config)
