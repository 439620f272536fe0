"""The cluster over Redis: the leader's lease, its fence, and the trading commands sent to it.

See :mod:`fxgate.services.ports.cluster` for the ports, :mod:`.lease` and
:mod:`.commands` for how, and docs/operations.md ("Several hosts") for running it.
"""

from fxgate.bus.cluster.node import RedisCluster, build

__all__ = ["RedisCluster", "build"]
