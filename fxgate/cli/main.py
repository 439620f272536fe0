"""The ``fxgate`` command: the daemon and its admin tasks, as subcommands.

Admin commands open the same store as the daemon (the SQLite file in the state
directory, or MongoDB), so they work while it runs: a running daemon picks up a
rotated or retired key within ``auth.keyring_refresh`` seconds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fxgate import __version__
from fxgate.domain.roles import Scope


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help="TOML configuration file (default: $FXGATE_CONFIG, ./etc/fxgate.toml, "
        "/etc/fxgate/fxgate.toml, else built-in defaults)",
    )


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a whole number of seconds, not {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fxgate",
        description="Real-time trading gateway: WebSocket streams and a REST API over a "
        "MetaTrader 5 or paper broker. State lives in $FXGATE_STATE_DIR (default ./var).",
    )
    parser.add_argument("--version", action="version", version=f"fxgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the daemon",
        description="Run the daemon. With no configuration: port 8000, SQLite state in "
        "$FXGATE_STATE_DIR or ./var, the paper broker and the local bus.",
    )
    _config_arg(serve)
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port; 0 = any)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="create seed 004's demo trader (API key demo_api_key, secret demo_secret);"
        " only on a loopback address",
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes sharing the port (overrides server.workers; more than 1"
        ' needs bus.backend = "redis")',
    )
    # A worker of `serve --workers N`: the supervisor's listening socket and status pipe.
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--status-fd", type=int, help=argparse.SUPPRESS)

    keys = sub.add_parser("keys", help="JWT signing keys", description="Manage the signing keys.")
    _config_arg(keys)
    ksub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    kl = ksub.add_parser("list", help="list keys: KID, STATUS (active|standby|retired), CREATED")
    kl.add_argument("--json", action="store_true", help="print a JSON list instead")
    ksub.add_parser("rotate", help="make a new active key; older keys keep verifying")
    kr = ksub.add_parser("retire", help="stop accepting tokens signed by KID")
    kr.add_argument("kid")
    kp = ksub.add_parser(
        "prune",
        help="retire the standby keys out of service for longer than --grace",
        description="Retire every standby key that stopped signing more than SECONDS ago. "
        "A key stops signing when the next one is created, so the key that was active "
        "until the last rotation is always kept. Prints one line per key "
        "(action=active|keep|retire|retire-failed kid=…) and a summary, never key "
        "material; exits 1 if a retirement failed. scripts/rotate-keys runs it after "
        "`keys rotate`.",
    )
    kp.add_argument(
        "--grace",
        type=_seconds,
        default=86400,
        metavar="SECONDS",
        help="how long a key stays verifiable after it stopped signing; at least "
        "auth.access_token_ttl (default: 86400, a day)",
    )
    kp.add_argument("--dry-run", action="store_true", help="retire nothing; print the plan")

    users = sub.add_parser("users", help="user accounts", description="Manage users.")
    _config_arg(users)
    usub = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    ua = usub.add_parser("add", help="create a user who can log in with email and password")
    ua.add_argument("--email", required=True)
    ua.add_argument("--name", required=True)
    ua.add_argument("--role", choices=["admin", "trader", "viewer"], default="trader")
    ua.add_argument("--tier", default="free")
    pw = ua.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password", help="the password (visible in `ps`: prefer --password-stdin)")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    ul = usub.add_parser("list", help="list users")
    ul.add_argument("--json", action="store_true")
    ud = usub.add_parser("disable", help="disable a user (their tokens stop working)")
    ud.add_argument("user_id")

    token = sub.add_parser("token", help="issue access tokens", description="Issue tokens.")
    _config_arg(token)
    tsub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    ti = tsub.add_parser(
        "issue",
        help="print a JWT for a user (created with --role if unknown)",
        description="Print only the JWT, for scripts and tests. The token's sub is the "
        "user id; an unknown id is created with the given role.",
    )
    ti.add_argument("--user", required=True, help="user id (the token's sub)")
    ti.add_argument("--role", choices=["admin", "trader", "viewer"])
    ti.add_argument("--tier", help="subscription tier claim (default: the user's tier)")
    ti.add_argument("--ttl", type=int, help="lifetime in seconds (default auth.access_token_ttl)")
    ti.add_argument(
        "--scope",
        action="append",
        default=[],
        choices=[str(s) for s in Scope],
        help="a right beyond the role, e.g. publish for a backend service (repeatable)",
    )

    config = sub.add_parser("config", help="configuration", description="Check configuration.")
    csub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    cc = csub.add_parser(
        "check", help="validate a config file (with FXGATE_… overrides); names the bad key"
    )
    _config_arg(cc)
    cc.add_argument("--show", action="store_true", help="print the effective configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fxgate.cli import commands

    try:
        return commands.dispatch(args)
    except commands.CliError as exc:
        print(f"fxgate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
