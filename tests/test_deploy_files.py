"""Deployment files checked without Docker or a cluster (CI machines have neither).

docker-compose.yml, the Kubernetes manifests and KEDA objects are parsed and held to what
the code does: every stage present, the command line the real `guardstream` parser accepts
as a worker of that stage, consumer groups and topics as `create_app` and `TopicNames` name
them, secrets only by reference. Also here: the real-Kafka settings paths (SASL/TLS
credentials handed to Faust, pre-created topics) and the worker health check.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import socket
import ssl
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from guardstream.agents import STAGE_ORDER, parse_stage_names
from guardstream.commands import discover
from guardstream.errors import ConfigError
from guardstream.policy import parse_policy
from guardstream.settings import Settings
from guardstream.topics import TopicNames

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
SECRET_WORDS = ("KEY", "PASSWORD", "TOKEN", "SECRET", "REDIS_URL", "PEPPER")


def _cli(argv: list[str]) -> argparse.Namespace:
    """Parse argv with the real `guardstream` subcommand parsers (as `cli.main` builds them)."""
    parser = argparse.ArgumentParser(prog="guardstream")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in discover():
        module.add_arguments(sub.add_parser(module.NAME, help=module.HELP))
    return parser.parse_args(argv)


def _worker_stages(argv: list[str]) -> list[str]:
    args = _cli(argv)
    assert args.command == "worker", argv
    return parse_stage_names(args.stage)


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s(kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in _docs(path):
            if doc.get("kind") == kind:
                found[doc["metadata"]["name"]] = doc
    return found


def _env_config() -> dict[str, str]:
    return dict(_k8s("ConfigMap")["guardstream-env"]["data"])


# --- docker-compose.yml ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_compose_runs_each_stage_as_a_guardstream_worker(compose: dict[str, Any],
                                                         stage: str) -> None:
    service = compose["services"][stage]
    assert _worker_stages(service["command"]) == [stage]
    assert service["deploy"]["replicas"] >= 1
    assert service["deploy"]["replicas"] <= int(service["environment"]["GUARDSTREAM_PARTITIONS"])
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"][-1] == "/usr/local/lib/guardstream/healthcheck.py"
    assert service["deploy"]["resources"]["limits"]["memory"]
    env = service["environment"]
    assert env["GUARDSTREAM_BROKER"] == "kafka://kafka:9092"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert Settings.from_env({k: str(v) for k, v in env.items()
                              if "${" not in str(v)} | {"GUARDSTREAM_AUDIT_KEY": "k"})
    for name in ("kafka", "redis", "init-topics"):
        assert name in service["depends_on"]


def test_compose_services_infrastructure(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "redis", "init-topics", "serve", "otel-collector", "jaeger"} <= set(services)
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"].split(",") == ["broker", "controller"]
    advertised = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["PLAINTEXT"] == "kafka:9092"
    listeners = {item.split("://")[0] for item in kafka["KAFKA_LISTENERS"].split(",")}
    protocol_map = dict(item.split(":") for item in
                        kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listeners == set(protocol_map) and set(advertised) <= listeners
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners - set(advertised)
    for name in ("kafka", "redis", "serve"):
        assert services[name]["healthcheck"]["test"], name
    serve = services["serve"]
    args = _cli(serve["command"])
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8080)  # noqa: S104
    assert "/healthz" in " ".join(serve["healthcheck"]["test"])
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    # The collector config the compose file mounts exists and wires OTLP in, Jaeger out.
    mount = services["otel-collector"]["volumes"][0].split(":")[0]
    collector = yaml.safe_load((ROOT / mount).read_text())
    traces = collector["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert collector["exporters"][traces["exporters"][0]]["endpoint"] == "jaeger:4317"
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    keys_file = compose["secrets"]["gateway_keys"]["file"].split(":-")[1].rstrip("}")
    assert (ROOT / keys_file).is_file()


def test_the_image_entrypoint_is_the_cli_and_ships_the_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["guardstream"]' in dockerfile
    assert "COPY deploy/healthcheck.py /usr/local/lib/guardstream/healthcheck.py" in dockerfile


# --- Kubernetes ---------------------------------------------------------------------------

def test_every_k8s_file_is_valid_yaml_and_kustomizations_list_existing_files() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert files
    for path in files:
        for doc in _docs(path):
            assert {"apiVersion", "kind"} <= set(doc), path
    for kustomization in K8S.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text())["resources"]:
            assert (kustomization.parent / resource).exists(), (kustomization, resource)


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_k8s_deployment_per_stage_runs_guardstream_worker(stage: str) -> None:
    deployment = _k8s("Deployment")[f"guardstream-{stage}"]
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    (container,) = spec["template"]["spec"]["containers"]
    assert "command" not in container  # the image's entrypoint, `guardstream`
    assert _worker_stages(container["args"]) == [stage]
    resources = container["resources"]
    assert resources["requests"]["memory"] and resources["requests"]["cpu"]
    assert resources["limits"]["memory"]
    assert container["livenessProbe"]["exec"]["command"][-1].endswith("healthcheck.py")
    assert {"configMapRef": {"name": "guardstream-env"}} in container["envFrom"]
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["policy"]["configMap"]["name"] == "guardstream-policy"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(mounts["policy"]) / "policy.yaml") == _env_config()["GUARDSTREAM_POLICY"]


def test_k8s_secrets_are_referenced_never_written() -> None:
    config = _env_config()
    assert not [name for name in config if any(word in name for word in SECRET_WORDS)]
    for workload in [*_k8s("Deployment").values(), *_k8s("Job").values()]:
        pod = workload["spec"]["template"]["spec"]
        secret_volumes = {v["name"] for v in pod["volumes"] if "secret" in v}
        for container in pod["containers"]:
            secret_dirs = [m["mountPath"] for m in container.get("volumeMounts", [])
                           if m["name"] in secret_volumes]
            for entry in container.get("env", []):
                if not any(word in entry["name"] for word in SECRET_WORDS):
                    continue
                if "value" in entry:  # only a path into a mounted Secret
                    assert any(entry["value"].startswith(d + "/") for d in secret_dirs), entry
                else:
                    assert "secretKeyRef" in entry["valueFrom"], entry["name"]
    assert not _k8s("Secret")


def test_k8s_config_is_valid_settings_and_policy() -> None:
    settings = Settings.from_env({**_env_config(), "GUARDSTREAM_AUDIT_KEY": "k"})
    assert settings.bootstrap_servers
    policy = _k8s("ConfigMap")["guardstream-policy"]["data"]["policy.yaml"]
    assert parse_policy(yaml.safe_load(policy)).tiers


def test_k8s_serve_deployment_and_service() -> None:
    deployment = _k8s("Deployment")["guardstream-serve"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = _cli(container["args"])
    assert (args.command, args.host) == ("serve", "0.0.0.0")  # noqa: S104
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    service = _k8s("Service")["guardstream"]
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items())


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_keda_scales_each_stage_on_its_own_consumer_group_and_topic(stage: str) -> None:
    from guardstream.app import create_app

    settings = Settings.from_env({**_env_config(), "GUARDSTREAM_AUDIT_KEY": "k"})
    scaled = _k8s("ScaledObject")[f"guardstream-{stage}"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in _k8s("Deployment")
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"guardstream-{stage}"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] <= settings.partitions
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == create_app(settings, stage).conf.id
    assert meta["topic"] == TopicNames(settings.topic_prefix).input_of(stage)
    assert meta["bootstrapServers"].split(",") == settings.bootstrap_servers
    assert int(meta["lagThreshold"]) > 0


# --- real-Kafka settings ------------------------------------------------------------------

def _ca_file() -> str:
    import certifi

    return str(certifi.where())


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {"security_protocol": "PLAINTEXT"}),
    ({"GUARDSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
      "GUARDSTREAM_KAFKA_SASL_MECHANISM": "PLAIN"},
     {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "ssl_context": None}),
    ({"GUARDSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
      "GUARDSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256"}),
    ({"GUARDSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
      "GUARDSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "GUARDSTREAM_KAFKA_SSL_CAFILE": "ca"},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512"}),
    ({"GUARDSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL", "GUARDSTREAM_KAFKA_SSL_CAFILE": "ca"},
     {"security_protocol": "SSL"}),
])
def test_faust_app_gets_the_configured_kafka_credentials(env: dict[str, str],
                                                         expected: dict[str, Any]) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from guardstream.app import create_app

    env = {k: (_ca_file() if v == "ca" else v) for k, v in env.items()}
    if "SASL" in env.get("GUARDSTREAM_KAFKA_SECURITY_PROTOCOL", "").upper():
        env |= {"GUARDSTREAM_KAFKA_SASL_USERNAME": "svc-guardstream",
                "GUARDSTREAM_KAFKA_SASL_PASSWORD": "pw-from-secret"}
    settings = Settings.from_env({"GUARDSTREAM_BROKER": "kafka://b1:9093,b2:9093", **env})
    app = create_app(settings, "redact")

    auth = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials))
    assert {k: auth.get(k) for k in expected} == expected
    assert [str(url) for url in app.conf.broker] == ["kafka://b1:9093", "kafka://b2:9093"]
    if "sasl_mechanism" in expected:
        assert auth["sasl_plain_username"] == "svc-guardstream"
        assert auth["sasl_plain_password"] == "pw-from-secret"
        assert "pw-from-secret" not in repr(settings) + repr(app.conf.broker_credentials)
    if expected["security_protocol"].endswith("SSL"):
        assert isinstance(auth["ssl_context"], ssl.SSLContext)
        assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_topic_partitions_and_replication_come_from_settings() -> None:
    from guardstream.app import create_app

    settings = Settings.from_env({"GUARDSTREAM_PARTITIONS": "24",
                                  "GUARDSTREAM_REPLICATION_FACTOR": "3",
                                  "GUARDSTREAM_PRECREATED_TOPICS": "true",
                                  "GUARDSTREAM_CONCURRENCY": "4"})
    conf = create_app(settings, "llm").conf
    assert (conf.topic_partitions, conf.topic_replication_factor) == (24, 3)
    assert conf.topic_allow_declare is False
    assert settings.agent_concurrency == 4


@pytest.mark.integration
async def test_precreated_topics_mode_names_the_missing_topics(broker: Any) -> None:
    from guardstream.topics.admin import ensure_topics

    prefix = f"gs{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({"GUARDSTREAM_BROKER": broker.url,
                                  "GUARDSTREAM_TOPIC_PREFIX": prefix,
                                  "GUARDSTREAM_PRECREATED_TOPICS": "1"})
    with pytest.raises(ConfigError) as caught:
        await ensure_topics(settings)
    message = str(caught.value)
    assert "GUARDSTREAM_PRECREATED_TOPICS" in message
    assert all(name in message for name in TopicNames(prefix).all())
    # Once they exist (created as an operator would), the check passes and creates nothing.
    created = await ensure_topics(dataclasses.replace(settings, create_topics=True))
    assert sorted(created) == sorted(TopicNames(prefix).all())
    assert await ensure_topics(settings) == []


# --- the worker health check --------------------------------------------------------------

def _healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("guardstream_healthcheck",
                                                  ROOT / "deploy" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("url", "ports"), [
    ("kafka://kafka:9092", {9092}),
    ("kafka://b1:9093,kafka://b2:9094", {9093, 9094}),
    ("kafka://b1:9093,b2:9093", {9093}),
    ("", {9092}),
])
def test_healthcheck_broker_ports(url: str, ports: set[int]) -> None:
    assert _healthcheck().broker_ports(url) == ports


def test_healthcheck_reads_established_connections(tmp_path: Path) -> None:
    health = _healthcheck()
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue\n"
        "   0: 0100007F:A1B2 0100007F:2384 01 00000000:00000000\n"   # ESTABLISHED to 9092
        "   1: 0100007F:A1B3 0100007F:2385 06 00000000:00000000\n"   # TIME_WAIT to 9093
        "   2: 00000000:1F90 00000000:0000 0A 00000000:00000000\n")  # LISTEN
    assert health.established_remote_ports([table, tmp_path / "missing"]) == {9092}


def test_healthcheck_sees_a_live_connection_and_not_a_closed_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    health = _healthcheck()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        monkeypatch.setenv("GUARDSTREAM_BROKER", f"kafka://127.0.0.1:{port}")
        with socket.create_connection(("127.0.0.1", port)):
            peer, _ = server.accept()
            with peer:
                assert health.main() == 0
    assert port not in health.established_remote_ports()
    assert health.main() == 1


# --- Redis: TLS and auth in REDIS_URL, Cluster-safe limiter keys ---------------------------

def test_redis_url_with_tls_and_auth_reaches_the_client() -> None:
    from redis.asyncio.connection import SSLConnection

    from guardstream.resources import Resources

    url = ("rediss://guardstream:pw-from-secret@redis.example:6380/2"
           "?ssl_cert_reqs=required&ssl_ca_certs=/etc/redis-tls/ca.crt")
    resources = Resources(Settings.from_env({"REDIS_URL": url}))
    try:
        pool = resources.redis().connection_pool
        kwargs = pool.connection_kwargs
        assert pool.connection_class is SSLConnection
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.example", 6380, 2)
        assert (kwargs["username"], kwargs["password"]) == ("guardstream", "pw-from-secret")
        assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"]) == ("required",
                                                                      "/etc/redis-tls/ca.crt")
    finally:
        resources.executor.shutdown(wait=False)


@pytest.mark.parametrize("user_id", ["alice", "{tag}", "a}b{c", "ünïcødé", "x" * 500, ""])
@pytest.mark.parametrize("kind", ["u", "ip"])
def test_limiter_keys_of_one_identity_share_one_cluster_slot(kind: str, user_id: str) -> None:
    from redis.crc import key_slot

    from guardstream.limiter.quota import Identity

    keys = Identity(kind, user_id).keys("gs:rl")
    assert len(set(keys)) == 3
    assert len({key_slot(key.encode()) for key in keys}) == 1
    if user_id:
        assert user_id not in "".join(keys)  # hashed, not the raw id


def test_deployments_on_kafka_use_a_long_fetch_wait(compose: dict[str, Any]) -> None:
    # Kafka answers a fetch once records arrive, so only the embedded broker needs the
    # short default; on Kafka it would only cost idle CPU.
    compose_env = compose["x-guardstream-env"]
    for env in (compose_env, _env_config()):
        assert int(env["GUARDSTREAM_FETCH_MAX_WAIT_MS"]) >= 100
