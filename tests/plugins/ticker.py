"""A throwaway third-party channel plugin, as an outside author would write one.

It publishes a counter on the public ``test-ticker`` channel every 50 ms, and defines
``test-vip``, a per-user channel only traders may subscribe to, fed from
``/test/vip?user=ID`` so a test can address one user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from tornado.web import RequestHandler

from fxgate.domain.roles import Role
from fxgate.plugins.api import Channel, Event, Filter, Filters, PluginAPI, Principal, hookimpl


class TickerChannel(Channel):
    name = "test-ticker"
    message_type = "tick"
    scope = "public"
    filters = {"parity": Filter("parity", "even or odd")}
    description = "A counter, for tests"

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        return [{"n": 0, "parity": "even", "hello": principal.user_id}]


class VipChannel(Channel):
    name = "test-vip"
    message_type = "vip"
    scope = "user"
    min_role = Role.TRADER
    description = "Per-user messages for traders, for tests"


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [TickerChannel(api), VipChannel(api)]


@hookimpl
def startup(api: PluginAPI) -> None:
    async def tick() -> None:
        n = 0
        while True:
            await asyncio.sleep(0.05)
            n += 1
            api.publish(Event("test-ticker", {"n": n, "parity": "even" if n % 2 == 0 else "odd"}))

    api.spawn(tick(), name="test-ticker")


class VipHandler(RequestHandler):
    def post(self) -> None:
        api: PluginAPI = self.application.settings["fxgate_api"]
        api.publish(
            Event(
                "test-vip", {"secret": self.get_argument("text")}, user_id=self.get_argument("user")
            )
        )
        self.finish({"ok": True})


@hookimpl
def register_routes(api: PluginAPI) -> list[tuple[Any, ...]]:
    return [(r"/test/vip", VipHandler)]
