"""What each subcommand does; ``main`` only parses."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fxgate.app.backends import STORES
from fxgate.config.settings import Settings, describe_error, load_settings
from fxgate.domain.roles import Role
from fxgate.services.auth.keyring import KeyRing, key_status
from fxgate.services.auth.passwords import MIN_LENGTH, hash_password
from fxgate.services.auth.retirement import prune
from fxgate.services.auth.sealing import Sealer, SealError, master_key_path
from fxgate.services.auth.tokens import TokenService
from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError


class CliError(Exception):
    """A problem the operator can fix; printed without a traceback."""


def settings_for(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args.config, use_default_paths=True)
    except (OSError, ValueError) as exc:
        # The same block as ``fxgate config check`` prints for the same settings.
        raise CliError("configuration invalid:\n  " + "\n  ".join(describe_error(exc))) from None


def with_store(settings: Settings, fn: Callable[[Store], Awaitable[int]]) -> int:
    """Run ``fn`` on the daemon's store, chosen by the same registry as the daemon's."""
    found = STORES.problems(settings.store.backend, settings)
    if found:
        raise CliError("; ".join(found))

    async def run() -> int:
        store = STORES.builder(settings.store.backend)(settings)
        await store.open()
        try:
            return await fn(store)
        except SealError as exc:
            raise CliError(str(exc)) from None
        finally:
            await store.close()

    return asyncio.run(run())


def sealer_for(settings: Settings) -> Sealer:
    """The daemon's sealer: the same master key file, so both read the same secrets."""
    return Sealer(master_key_path(settings.auth.master_key_file, settings.state_dir))


def dispatch(args: argparse.Namespace) -> int:
    handler = {
        "serve": serve,
        "keys": keys,
        "users": users,
        "token": token,
        "config": config,
    }[args.command]
    return handler(args)


def serve(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    given = (("host", args.host), ("port", args.port), ("workers", args.workers))
    server = settings.server.model_copy(update={k: v for k, v in given if v is not None})
    settings = settings.model_copy(update={"server": server})
    from fxgate.node import StartupError
    from fxgate.ops.demo import is_loopback
    from fxgate.ops.logging import setup_logging
    from fxgate.ops.serve import run

    demo = bool(getattr(args, "demo", False))
    if demo and not is_loopback(server.host):
        raise CliError(
            f"--demo publishes a trader's API key and secret: listen on a loopback address"
            f" (--host 127.0.0.1), not {server.host}"
        )
    setup_logging(settings.log.level, settings.log.format)
    try:
        if args.listen_fd is None and settings.server.workers > 1:
            return _supervise(settings, args, demo=demo)
        return run(settings, demo=demo, listen_fd=args.listen_fd, status_fd=args.status_fd)
    except StartupError as exc:
        raise CliError(f"cannot start: {exc}") from None


def _supervise(settings: Settings, args: argparse.Namespace, *, demo: bool) -> int:
    """Check the settings once, here, then run the workers (each checks them again)."""
    from fxgate.app.validation import problems
    from fxgate.node import StartupError
    from fxgate.ops.workers import supervise

    found = problems(settings)
    if found:
        raise StartupError("; ".join(found))
    argv = ["--config", str(args.config)] if args.config is not None else []
    argv += ["--workers", str(settings.server.workers)] + (["--demo"] if demo else [])
    return supervise(settings, argv)


def keys(args: argparse.Namespace) -> int:
    settings = settings_for(args)

    async def go(store: Store) -> int:
        ring = KeyRing(store.signing_keys, sealer=sealer_for(settings))
        if args.action == "rotate":
            key = await ring.rotate()
            await _audit(store, "keys.rotate", key.kid)
            print(key.kid)
        elif args.action == "retire":
            try:
                ok = await ring.retire(args.kid)
            except StoreConflictError as exc:
                raise CliError(f"{args.kid}: {exc}") from None
            if not ok:
                raise CliError(f"no such key, or retired already: {args.kid}")
            await _audit(store, "keys.retire", args.kid)
            print(f"retired {args.kid}")
        elif args.action == "prune":
            return await _prune(store, ring, settings, args)
        else:
            await ring.load()
            rows = [
                {"kid": k.kid, "status": key_status(k), "created_at": k.created_at.isoformat()}
                for k in ring.ring()
            ]
            if args.json:
                print(json.dumps(rows))
            else:
                for r in rows:
                    print(f"{r['kid']}\t{r['status']}\t{r['created_at']}")
        return 0

    return with_store(settings, go)


async def _prune(store: Store, ring: KeyRing, settings: Settings, args: argparse.Namespace) -> int:
    """``keys prune``: the plan and what became of it, one ``key=value`` line per key."""
    ttl = settings.auth.access_token_ttl
    if args.grace < ttl:
        print(
            f"fxgate: warning: grace {args.grace}s is shorter than the access-token lifetime"
            f" (auth.access_token_ttl = {ttl}s): tokens signed by a retired key are refused"
            " before they expire",
            file=sys.stderr,
        )

    async def audited(kid: str) -> None:
        await _audit(store, "keys.retire", kid, via="keys prune", grace=args.grace)

    try:
        plan, outcomes = await prune(
            ring, now=datetime.now(UTC), grace=args.grace, dry_run=args.dry_run, on_retired=audited
        )
    except ValueError as exc:
        raise CliError(f"cannot read the signing keys: {exc}; nothing retired") from None
    dry = " dry_run=yes" if args.dry_run else ""
    if plan.active is not None:
        print(f"action=active kid={plan.active.kid} created_at={_utc(plan.active.created_at)}")
    retired = kept = failed = 0
    for outcome in outcomes:
        v = outcome.verdict
        if v.out_since is None:
            detail = "newer than the active key, not yet in service"
        else:
            detail = f"standby_since={_utc(v.out_since)} age={v.age}s grace={args.grace}s"
        if v.action == "keep":
            kept += 1
            print(f"action=keep kid={v.kid} {detail}")
        elif outcome.retired is False:
            failed += 1
            print(f"action=retire-failed kid={v.kid} {detail}")
            print(f"fxgate: cannot retire {v.kid}: {outcome.error}", file=sys.stderr)
        else:
            retired += 1
            print(f"action=retire kid={v.kid} {detail}{dry}")
    print(f"action=summary retired={retired} kept={kept} failed={failed}{dry}")
    return 1 if failed else 0


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _audit(store: Store, action: str, target: str, **details: Any) -> None:
    await store.audit.append(actor="cli", action=action, target=target, details=details)


def users(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    password = None
    if args.action == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
        if not password or len(password) < MIN_LENGTH:
            raise CliError(f"the password needs at least {MIN_LENGTH} characters")

    async def go(store: Store) -> int:
        if args.action == "add":
            assert password is not None
            try:
                user = await store.users.create(
                    email=args.email,
                    name=args.name,
                    role=args.role,
                    tier=args.tier,
                    password_hash=hash_password(password),
                )
            except StoreConflictError:
                raise CliError(f"a user with the email {args.email} exists") from None
            await _audit(store, "users.add", user.id, role=args.role)
            print(user.id)
        elif args.action == "disable":
            updated = await store.users.update(args.user_id, disabled=True)
            if updated is None:
                raise CliError(f"no such user: {args.user_id}")
            await store.sessions.revoke_user_refresh_tokens(args.user_id)
            await _audit(store, "users.disable", args.user_id)
            print(f"disabled {args.user_id}")
        else:
            items, _ = await store.users.page(limit=100_000)
            rows = [
                {
                    "id": u.id,
                    "email": u.email,
                    "name": u.name,
                    "role": u.role,
                    "tier": u.tier,
                    "disabled": u.disabled,
                }
                for u in items
            ]
            if args.json:
                print(json.dumps(rows))
            else:
                for r in rows:
                    state = "disabled" if r["disabled"] else "active"
                    print(f"{r['id']}\t{r['email']}\t{r['role']}\t{state}\t{r['name']}")
        return 0

    return with_store(settings, go)


def token(args: argparse.Namespace) -> int:
    settings = settings_for(args)

    async def go(store: Store) -> int:
        user = await store.users.get(args.user)
        if user is None:
            user = await store.users.create(
                user_id=args.user,
                email=f"{args.user}@users.fxgate.invalid",
                name=args.user,
                role=args.role or "trader",
                tier=args.tier or "free",
            )
            await _audit(store, "users.add", user.id, role=user.role, via="token issue")
        if user.disabled:
            raise CliError(f"user {args.user} is disabled")
        ring = KeyRing(store.signing_keys, sealer=sealer_for(settings))
        await ring.ensure_active()
        service = TokenService(
            ring,
            default_ttl=settings.auth.access_token_ttl,
            max_ttl=settings.auth.max_token_ttl,
        )
        if args.ttl is not None and not 0 < args.ttl <= service.max_ttl:
            # The daemon refuses any token living longer than auth.max_token_ttl.
            raise CliError(f"--ttl must be between 1 and {service.max_ttl} (auth.max_token_ttl)")
        jwt, claims = service.issue(
            user.id,
            Role(args.role or user.role),
            tier=args.tier or user.tier,
            ttl=args.ttl,
            scopes=args.scope,
        )
        await _audit(
            store,
            "token.issue",
            user.id,
            jti=claims.jti,
            ttl=claims.exp - claims.iat,
            scope=" ".join(sorted(claims.scopes)),
        )
        print(jwt)
        return 0

    return with_store(settings, go)


def config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, use_default_paths=True)
    except FileNotFoundError as exc:
        print(f"fxgate: no such file: {exc.filename}", file=sys.stderr)
        return 1
    except Exception as exc:
        print("fxgate: configuration invalid:", file=sys.stderr)
        for line in describe_error(exc):
            print(f"  {line}", file=sys.stderr)
        return 1
    from fxgate.app.validation import problems

    found = problems(settings)
    if found:
        print("fxgate: configuration invalid:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    if args.show:
        from fxgate.config.redis_url import redacted

        bus = settings.bus.model_copy(update={"redis_url": redacted(settings.bus.redis_url)})
        shown = settings.model_copy(update={"bus": bus})
        print(shown.model_dump_json(indent=2, exclude={"store": {"mongodb_uri"}}))
    else:
        print("configuration OK")
    return 0
