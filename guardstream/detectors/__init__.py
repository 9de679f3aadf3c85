"""Detectors used by guardstream stages: each is a plain library with no Kafka dependency,
so stages, the CLI and offline evaluations can share one implementation."""
