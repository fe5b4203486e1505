"""python -m eagate_client: try a device against an eagate server by hand
(the Python twin of the Rust eagate-device CLI). Prints JSON answers; the
secret is read from an environment variable, never from the command line.

    export EAGATE_DEVICE_SECRET=eags_...
    python -m eagate_client --server https://eagate.example.com --device-id 3f6c... config
    python -m eagate_client ... poll --wait 25
    python -m eagate_client ... ack <signal-id> executed --ticket 4812 --fill-price 1.0851
    python -m eagate_client ... heartbeat --ea-version 1.0 --balance 10250.75
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from .client import DeviceClient, EagateError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eagate_client", description="Send signed device requests to an eagate server")
    parser.add_argument("--server", default=os.environ.get("EAGATE_SERVER", "http://127.0.0.1:8080"))
    parser.add_argument("--device-id", default=os.environ.get("EAGATE_DEVICE_ID"), required="EAGATE_DEVICE_ID" not in os.environ)
    parser.add_argument("--secret-env", default="EAGATE_DEVICE_SECRET", help="environment variable holding the device secret")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("config", help="fetch the device's configuration")
    poll = commands.add_parser("poll", help="fetch pending signals (long-polls with --wait)")
    poll.add_argument("--wait", type=int, default=0)
    poll.add_argument("--limit", type=int, default=10)
    ack = commands.add_parser("ack", help="acknowledge a signal")
    ack.add_argument("signal_id")
    ack.add_argument("outcome", choices=["executed", "rejected", "failed"])
    ack.add_argument("--ticket", type=int)
    ack.add_argument("--fill-price", type=float)
    ack.add_argument("--message")
    hb = commands.add_parser("heartbeat", help="send a heartbeat")
    hb.add_argument("--ea-version")
    hb.add_argument("--terminal-build", type=int)
    hb.add_argument("--broker")
    hb.add_argument("--account-login", type=int)
    hb.add_argument("--balance", type=float)
    hb.add_argument("--equity", type=float)
    args = parser.parse_args(argv)

    secret = os.environ.get(args.secret_env)
    if not secret:
        print(f"error: set {args.secret_env} to the device secret", file=sys.stderr)
        return 2
    try:
        client = DeviceClient(args.server, args.device_id, secret)
        if args.command == "config":
            result = dataclasses.asdict(client.config())
        elif args.command == "poll":
            result = [{k: v for k, v in dataclasses.asdict(s).items() if k != "raw"}
                      for s in client.poll(wait=args.wait, limit=args.limit)]
        elif args.command == "ack":
            result = dataclasses.asdict(client.ack(args.signal_id, args.outcome, ticket=args.ticket,
                                                   fill_price=args.fill_price, message=args.message))
        else:
            result = {"server_time": client.heartbeat(ea_version=args.ea_version, terminal_build=args.terminal_build,
                                                      broker=args.broker, account_login=args.account_login,
                                                      balance=args.balance, equity=args.equity)}
    except EagateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
