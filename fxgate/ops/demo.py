"""``fxgate serve --demo``: seed 004's demo credentials, for trying its front end.

Seed 004 ships ``demo_api_key`` / ``demo_secret``. With ``--demo`` the daemon makes sure
a trader ``demo`` exists with exactly that API key (created once, kept in the store like
any key, its secret sealed) and says so in one log line. Since the secret is public,
``--demo`` is refused unless the daemon listens on a loopback address only.
"""

from __future__ import annotations

import ipaddress
import logging

from fxgate.node import Node

log = logging.getLogger("fxgate")

DEMO_USER = "demo"
DEMO_API_KEY = "demo_api_key"
DEMO_SECRET = "demo_secret"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def ensure_demo_trader(node: Node) -> None:
    store = node.store
    user = await store.users.get(DEMO_USER)
    if user is None:
        user = await store.users.create(
            user_id=DEMO_USER,
            email="demo@users.fxgate.invalid",
            name="Demo Trader",
            role="trader",
        )
        await store.audit.append("daemon", "users.add", user.id, {"role": "trader", "via": "demo"})
    key = await store.api_keys.get(DEMO_API_KEY)
    if key is None:
        await store.api_keys.create(
            user_id=user.id,
            key_id=DEMO_API_KEY,
            secret=node.sealer.seal(DEMO_SECRET),
            name="seed 004 demo",
        )
        await store.audit.append(user.id, "apikey.create", DEMO_API_KEY, {"via": "demo"})
    elif key.user_id != user.id or not key.active:
        log.warning("demo mode: the API key %s exists but is not the demo trader's", DEMO_API_KEY)
        return
    log.info(
        "demo mode: trader %r with API key %s / secret %s (loopback only)",
        DEMO_USER,
        DEMO_API_KEY,
        DEMO_SECRET,
    )
