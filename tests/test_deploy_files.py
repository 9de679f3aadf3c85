"""docker-compose.yml is checked here because no Docker engine runs on CI machines."""

from __future__ import annotations

from pathlib import Path

import yaml

from guardstream.agents import STAGE_ORDER

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_one_worker_service_per_stage_with_the_cli_command() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "redis"} <= set(services)
    for stage in STAGE_ORDER:
        service = services[stage]
        assert service["command"] == ["worker", "--stage", stage]
        assert service["deploy"]["replicas"] >= 1
        assert service["environment"]["GUARDSTREAM_BROKER"] == "kafka://kafka:9092"
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    kafka = services["kafka"]["environment"]
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"] and "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"


def test_the_image_entrypoint_is_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["guardstream"]' in dockerfile
