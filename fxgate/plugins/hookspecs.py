"""The hooks fxgate calls, grouped by when they are called.

Every hook here is wiring: it runs at start-up, shutdown or on a health check, never
per message. Ticks and trading events go through the hub, which a plugin reaches with
``api.publish(Event(...))`` from a task it starts in :func:`startup`.

Every hook receives ``api``, a :class:`fxgate.plugins.api.PluginAPI`: the narrow,
documented surface of the daemon (publish, ingest, spawn, read-only trading, market and
health views, settings, version), never the node itself.

Implementations may be plain functions or coroutines (``startup``, ``shutdown`` and
``health_checks``' callables are awaited when they return awaitables). Hook arguments
are passed by name; an implementation may accept any subset of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fxgate.plugins.api import PluginAPI
    from fxgate.plugins.channel import Channel

hookspec = pluggy.HookspecMarker("fxgate")

# -- start-up -------------------------------------------------------------------


@hookspec
def register_channels(api: PluginAPI) -> Iterable[Channel] | None:
    """Return the channels this plugin defines (instances of
    :class:`fxgate.plugins.channel.Channel` subclasses).

    :param api: the daemon being assembled; its read-only views can be kept by the
        channels, but it is not serving yet, so do not publish here.

    Called once, while the daemon is built. Two plugins defining the same channel name
    is a start-up error.
    """


@hookspec
def register_routes(api: PluginAPI) -> Iterable[tuple[Any, ...]] | None:
    """Return extra Tornado routes: ``(pattern, RequestHandler class[, kwargs])``.

    Called once at start-up, after the built-in routes are known; a plugin route may
    not shadow a built-in one. Handlers get the plugin API as
    ``self.application.settings["fxgate_api"]``.
    """


@hookspec
def startup(api: PluginAPI) -> Awaitable[None] | None:
    """The daemon is about to serve: start producers (tasks that publish events).

    :param api: the running daemon; ``api.publish(event)`` fans an event out,
        ``api.spawn(coro)`` runs a task that is cancelled on shutdown.

    Called once, after the store is open and the channels are registered, before the
    first client connects. May be a coroutine. An exception stops start-up.
    """


@hookspec
def health_checks(
    api: PluginAPI,
) -> Mapping[str, Callable[[], Awaitable[str] | str]] | None:
    """Return extra health components: name -> a callable answering ``"HEALTHY"``,
    ``"DEGRADED"`` or ``"DOWN"``.

    Called once while the daemon is built; the callables are then polled by the health
    monitor (every couple of seconds) and show in ``GET /health`` and on the ``system``
    channel. A callable that raises counts as ``"DOWN"``.
    """


# -- shutdown ---------------------------------------------------------------------


@hookspec
def shutdown(api: PluginAPI) -> Awaitable[None] | None:
    """The daemon is stopping: clients have been told and closed; the store is still
    open. May be a coroutine; it gets a few seconds before the process exits."""
