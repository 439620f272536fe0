"""``account``: balance, equity, margin and profit of one user's account.

The fields of seed 002's ``account_update``, for the dialects that follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.domain.trading import Account
from fxgate.plugins.api import (
    Channel,
    Event,
    Filters,
    PluginAPI,
    Principal,
    TradingReads,
    account_payload,
    hookimpl,
)


class AccountChannel(Channel):
    name = "account"
    message_type = "account"
    scope = "user"
    description = "Account balance, equity and margin"
    #: A trading stream: its history outlives restarts and nodes (Redis or the store).
    history_ttl = 600.0
    required_fields = ("balance", "equity", "currency")

    def __init__(self, trading: TradingReads) -> None:
        super().__init__()
        self.trading = trading

    def payload(self, event: Event) -> Mapping[str, Any]:
        data = event.data
        return account_payload(data) if isinstance(data, Account) else super().payload(event)

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        """The account as it is now, unless an account message is already on its way.

        The first look at a user's paper account opens it, and opening announces it;
        live messages are held back until the snapshot is out, so sending the snapshot
        too would show the same account twice.
        """
        before = self.trading.latest_account(principal.user_id)
        account = await self.trading.account(principal.user_id)
        if self.trading.latest_account(principal.user_id) is not before:
            return ()
        return [account_payload(account)]


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [AccountChannel(api.trading)]
