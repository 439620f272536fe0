"""``account``: balance, equity, margin and profit of one user's account.

The fields of seed 002's ``account_update``, for the dialects that follow.
"""

from __future__ import annotations

from fxgate import hookimpl
from fxgate.node import Node
from fxgate.plugins.channel import Channel


class AccountChannel(Channel):
    name = "account"
    message_type = "account"
    scope = "user"
    description = "Account balance, equity and margin"


@hookimpl
def register_channels(node: Node) -> list[Channel]:
    return [AccountChannel(node)]
