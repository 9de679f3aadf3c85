"""`guardstream serve`: the OpenAI-compatible HTTP front door (Starlette on uvicorn)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

import orjson

from guardstream.errors import ConfigError, GuardstreamError
from guardstream.settings import Settings

if TYPE_CHECKING:
    from guardstream.http.config import HttpConfig

NAME = "serve"
HELP = "serve POST /v1/chat/completions (OpenAI-compatible), /healthz and /metrics"
ORDER = 11


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (8080)")
    parser.add_argument("--keys", default=None,
                        help="gateway keys file (default: $GUARDSTREAM_GATEWAY_KEYS)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for a result before 504 "
                             "(default: $GUARDSTREAM_HTTP_TIMEOUT or 60)")
    parser.add_argument("--max-body-bytes", type=int, default=None,
                        help="larger bodies get 413 "
                             "(default: $GUARDSTREAM_HTTP_MAX_BODY_BYTES or 1048576)")
    parser.add_argument("--print-openapi", action="store_true",
                        help="print the OpenAPI document and exit")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from guardstream.http.config import HttpConfig
    from guardstream.http.openapi import openapi_document

    if args.print_openapi:
        print(orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2).decode())
        return 0
    config = HttpConfig.from_env(default_model=settings.policy.stages.llm.default_model)
    overrides = {name: value for name, value in (
        ("keys_path", args.keys), ("timeout_seconds", args.timeout),
        ("max_body_bytes", args.max_body_bytes)) if value is not None}
    if any(isinstance(v, int | float) and v <= 0 for v in overrides.values()):
        raise ValueError("--timeout and --max-body-bytes must be positive")
    config = dataclasses.replace(config, **overrides)
    if settings.broker is None:
        print("guardstream: set GUARDSTREAM_BROKER (e.g. the one `guardstream up` printed)",
              file=sys.stderr)
        return 2
    return serve(settings, config, host=args.host, port=args.port)


def serve(settings: Settings, config: HttpConfig, *, host: str, port: int) -> int:
    """Load the keys, connect the client, and serve until SIGINT/SIGTERM."""
    import uvicorn

    from guardstream.client import GuardstreamClient
    from guardstream.http import KeyStore, build_app

    if config.keys_path is None:
        raise ConfigError("set GUARDSTREAM_GATEWAY_KEYS (or --keys) to the gateway keys "
                          "file; create keys with `guardstream keys create`")
    keys = KeyStore.load(config.keys_path, pepper=config.key_pepper)
    unknown = keys.tiers - set(settings.policy.tiers)
    if unknown:
        raise ConfigError(f"gateway keys name tier(s) not in the policy: "
                          f"{', '.join(sorted(unknown))}")
    if not len(keys):
        print("guardstream: the keys file has no keys; every request will get 401",
              file=sys.stderr)
    try:  # fail with one clear line, not a lifespan traceback, when the broker is not there
        asyncio.run(_preflight(settings))
    except GuardstreamError as exc:
        print(f"guardstream: {exc}", file=sys.stderr)
        return 1
    app = build_app(GuardstreamClient.from_settings(settings), keys, config)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"ready http://{host}:{port}", flush=True)

    server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                   access_log=False, lifespan="on", server_header=False))
    server.run()
    return 0 if server.started else 1


async def _preflight(settings: Settings) -> None:
    """Connect once and find the results topic, then let go (the app connects for real)."""
    from guardstream.client import GuardstreamClient

    client = GuardstreamClient.from_settings(settings)
    await client.start()
    await client.close()
