"""The node's side of a lease lost while its broker is still starting as leader.

``Node._lead`` and ``Node._lose`` run on a node built without its parts (only what
they touch), so the race can be placed exactly: the lease goes while ``start`` is
awaited, as when the clock runs out during a slow MT5 terminal connect.
"""

from __future__ import annotations

import asyncio

from fxgate.node import Node


class SlowBroker:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()
        self.stops = 0

    async def start(self) -> None:
        self.started.set()
        await self.go_on.wait()

    async def stop(self) -> None:
        self.stops += 1


def bare_node(broker: SlowBroker) -> Node:
    node = Node.__new__(Node)
    node.broker = broker  # type: ignore[assignment]
    node._leading = False
    node._starting = False
    node._lost_starting = False
    node._quote_listener = None
    return node


async def test_a_lease_lost_while_the_broker_starts_stops_it_and_the_node_does_not_lead() -> None:
    broker = SlowBroker()
    node = bare_node(broker)
    lead = asyncio.create_task(node._lead())
    await asyncio.wait_for(broker.started.wait(), 5)
    node._lose()  # the campaign: the lease ran out meanwhile
    broker.go_on.set()
    await asyncio.wait_for(lead, 5)
    assert broker.stops == 1
    assert not node._leading
    node._lose()  # a later loss report: nothing more to stop
    assert broker.stops == 1
