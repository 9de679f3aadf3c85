"""`guardstream keys create|hash`: issue gateway API keys for `guardstream serve`."""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from guardstream.settings import Settings

NAME = "keys"
HELP = "create gateway API keys (printed once; only their hash is stored)"
ORDER = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="make a new key for a user and tier")
    create.add_argument("--user", required=True, help="the user id requests are made as")
    create.add_argument("--tier", default=None, help="the policy tier (default: policy's)")
    create.add_argument("--name", default=None, help="a label, e.g. the application")
    sub.add_parser("hash", help="print the stored hash of a key read from stdin "
                               "(e.g. to re-hash keys after setting a pepper)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from guardstream.http.keys import GatewayKey, generate_key, hash_key

    pepper = os.environ.get("GUARDSTREAM_GATEWAY_KEY_PEPPER", "").encode()
    if args.keys_command == "hash":
        key = sys.stdin.readline().strip()
        if not key:
            raise ValueError("no key on stdin")
        print(hash_key(key, pepper))
        return 0
    tier = args.tier or settings.policy.default_tier
    if tier not in settings.policy.tiers:
        raise ValueError(f"tier {tier!r} is not in the policy (tiers: "
                         f"{', '.join(sorted(settings.policy.tiers))})")
    if not args.user.strip():
        raise ValueError("--user must not be empty")
    key = generate_key()
    entry = GatewayKey(hash_key(key, pepper), args.user.strip(), tier, args.name)
    where = os.environ.get("GUARDSTREAM_GATEWAY_KEYS") or "the GUARDSTREAM_GATEWAY_KEYS file"
    print(f"key: {key}")
    print("(shown once: give it to its owner; only the hash below is stored)")
    print(f"add this line to {where} (a YAML list):")
    print(f"- {orjson.dumps(entry.to_dict()).decode()}")
    return 0
