"""Backends by name: each a lazily imported builder and the packages it needs.

A registry entry names its builder as ``"module:function"``, so choosing ``sqlite``
never imports motor, and a backend whose module or required package is missing is
reported as *not installed* (with the pip extra that installs it) before anything is
built. Each backend (``mt5``, ``redis``) is one entry.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from fxgate.bus.port import Bus
from fxgate.config.settings import Settings
from fxgate.hub.hub import Hub
from fxgate.services.ports.broker_backend import BrokerBackend
from fxgate.services.ports.store import Store

B = TypeVar("B", bound=Callable[..., Any])


def load(target: str) -> Any:
    """The object ``"package.module:name"`` names (imports the module)."""
    module, _, name = target.partition(":")
    return vars(importlib.import_module(module))[name]


@dataclass(frozen=True, slots=True)
class Backend:
    #: ``"module:function"`` building the backend from the settings.
    builder: str
    #: Import names of the packages it needs beyond fxgate's own requirements.
    requires: tuple[str, ...] = ()
    #: The pip extra that installs them: ``pip install 'fxgate[<extra>]'``.
    extra: str | None = None
    #: ``"module:function"`` returning the problems of its settings, one line each.
    check: str | None = None


@dataclass(frozen=True, slots=True)
class Registry(Generic[B]):
    #: The settings key that names the backend, e.g. ``"broker.backend"``.
    key: str
    backends: Mapping[str, Backend]

    def problems(self, name: str, settings: Settings) -> list[str]:
        """Why ``name`` cannot be used: unknown, not installed, or bad settings."""
        backend = self.backends.get(name)
        said = f"{self.key} = {json.dumps(name)}"
        if backend is None:
            known = ", ".join(json.dumps(n) for n in self.backends)
            return [f"{said}: unknown backend (known: {known})"]
        try:
            for package in backend.requires:
                importlib.import_module(package)
            load(backend.builder)
        except ImportError:
            hint = f" (pip install 'fxgate[{backend.extra}]')" if backend.extra else ""
            return [f"{said}: not installed{hint}"]
        if backend.check is None:
            return []
        return list(load(backend.check)(settings))

    def builder(self, name: str) -> B:
        return cast(B, load(self.backends[name].builder))


StoreBuilder = Callable[[Settings], Store]
#: The bus delivers to the hub of this process (and, for redis, to other processes');
#: the local bus keeps the trading channels' history in the store.
BusBuilder = Callable[[Settings, Hub, Store], Bus]
BrokerBuilder = Callable[[Settings, Store], BrokerBackend]

STORES: Registry[StoreBuilder] = Registry(
    "store.backend",
    {
        "sqlite": Backend("fxgate.store.factory:build_sqlite"),
        "mongodb": Backend(
            "fxgate.store.factory:build_mongodb",
            requires=("motor",),
            extra="mongodb",
            check="fxgate.store.factory:check_mongodb",
        ),
    },
)

BUSES: Registry[BusBuilder] = Registry(
    "bus.backend",
    {
        "local": Backend("fxgate.bus.local:build"),
        "redis": Backend(
            "fxgate.bus.redis:build",
            requires=("redis",),
            extra="redis",
            check="fxgate.bus.redis:check",
        ),
    },
)

BROKERS: Registry[BrokerBuilder] = Registry(
    "broker.backend",
    {
        "paper": Backend(
            "fxgate.brokers.paper.factory:build", check="fxgate.brokers.paper.factory:check"
        ),
        # MetaTrader5, or mt5linux when mt5.bridge is set: the check imports the one
        # the settings need and names its extra ("mt5" or "mt5linux").
        "mt5": Backend(
            "fxgate.brokers.mt5.factory:build",
            extra="mt5",
            check="fxgate.brokers.mt5.factory:check",
        ),
    },
)

#: With ``bus.backend = "redis"``: the lease, the fence and the command routing
#: (``fxgate.bus.cluster``), built beside the bus on the same ``bus.redis_url``.
CLUSTER = Backend("fxgate.bus.cluster:build", requires=("redis",), extra="redis")
