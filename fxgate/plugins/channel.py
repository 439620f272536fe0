"""The channel API: what a channel plugin defines, and the defaults it can override.

A channel says who may receive it (``scope``, ``min_role``), which filters a subscriber
may give and how they match, what a new subscriber gets first (``snapshot``), and how
an event becomes its canonical payload (``payload``). The hub calls ``payload`` once per
event and ``matches`` only for subscriptions whose filters the stream key does not
already decide, so both stay off the per-connection path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fxgate.domain.errors import ValidationError
from fxgate.domain.events import Event
from fxgate.domain.roles import Role

if TYPE_CHECKING:
    from fxgate.plugins.api import PluginAPI

Scope = Literal["user", "public"]

#: Normalised filters: filter name -> the set of accepted values.
Filters = Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as the verified token says; never taken from a client message."""

    user_id: str
    role: Role
    tier: str = "free"
    session_id: str = ""


@dataclass(frozen=True, slots=True)
class Filter:
    """A filter a channel accepts: a payload ``field`` compared with one or more values."""

    field: str
    description: str = ""


class Channel:
    """Base class of every channel, built-in or third-party.

    Subclasses set the class attributes and override what they need. Instances are
    created once per daemon by the ``register_channels`` hook.
    """

    #: The channel name clients subscribe to, e.g. ``"trades"``.
    name: ClassVar[str]
    #: The ``type`` of the messages it carries, e.g. ``"trade"``.
    message_type: ClassVar[str]
    #: ``"user"``: each event belongs to one user and reaches only that user's
    #: connections. ``"public"``: every subscriber may receive it.
    scope: ClassVar[Scope] = "user"
    #: The filters subscribers may give, by name.
    filters: ClassVar[Mapping[str, Filter]] = {}
    #: For a public channel: the filter whose value is the event's stream key (the
    #: hub indexes subscriptions by it, so matching costs nothing per connection).
    key_filter: ClassVar[str | None] = None
    #: Latest-per-stream-key wins for a slow client (market data); otherwise every
    #: message is kept and a client that falls too far behind is disconnected (4008).
    conflate: ClassVar[bool] = False
    #: The least role that may subscribe.
    min_role: ClassVar[Role] = Role.VIEWER
    #: Messages kept per stream for ``since`` recovery; 0 turns recovery off.
    history_size: ClassVar[int] = 200
    #: Seconds the stream's history is kept beyond the node's memory, so that a client
    #: resumes after a daemon restart or on another node: in Redis with the Redis bus,
    #: in the store with the local bus; refreshed by each message. 0: memory only.
    history_ttl: ClassVar[float] = 0.0
    #: About this node only (its health): delivered to this node's clients and never
    #: sent to other nodes over a shared bus.
    node_local: ClassVar[bool] = False
    #: One line for ``GET /channels`` and the docs.
    description: ClassVar[str] = ""
    #: Fields an event published from outside (``POST /api/v1/publish``) must carry.
    required_fields: ClassVar[tuple[str, ...]] = ()
    #: For a per-user channel: the stream that an event naming no user goes to (the
    #: ``logs`` channel's system lines, the public ``signals``); ``None``: every event
    #: must name its user. Who receives it is :meth:`subscription_keys`' decision.
    shared_stream: ClassVar[str | None] = None
    #: Whether each event is a record of its own (a fill, an alert) rather than the new
    #: state of something (an order, a position): a connection that missed records can
    #: be sent all of them late, behind newer events, but of state only the latest per
    #: item that nothing newer has replaced (``fxgate.hub.resume``, "a reconnect before
    #: the close"), or an older state would undo a newer one.
    records: ClassVar[bool] = False
    #: Whether an event published from outside is stored (:meth:`keep`) before it is
    #: announced, like a trading record; ``api.ingest`` then announces it once kept.
    keeps: ClassVar[bool] = False

    def __init__(self, api: PluginAPI | None = None) -> None:
        #: What the channel may read and do (``None`` for a channel that needs nothing).
        self.api = api

    def normalize_filters(self, raw: Any) -> dict[str, frozenset[str]]:
        """Check a subscriber's filters and normalise each value to a set of strings.

        Raises ``ValidationError`` naming the filter the channel does not accept.
        """
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise ValidationError(
                "Invalid subscription",
                field="filters",
                reason="filters must be an object",
                details={"channel": self.name},
            )
        out: dict[str, frozenset[str]] = {}
        for key, value in raw.items():
            if key not in self.filters:
                raise ValidationError(
                    "Invalid filter",
                    field=f"filters.{key}",
                    reason="unknown filter",
                    details={"channel": self.name, "filter": key, "accepted": sorted(self.filters)},
                )
            if value is None:
                continue
            values = value if isinstance(value, list) else [value]
            if not values or not all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in values
            ):
                raise ValidationError(
                    "Invalid filter",
                    field=f"filters.{key}",
                    reason="a filter value is a string or a list of strings",
                    details={"channel": self.name, "filter": key},
                )
            out[key] = frozenset(self.normalize_value(key, str(v)) for v in values)
        return out

    def normalize_value(self, filter_name: str, value: str) -> str:
        """Canonical form of one filter value; symbols are upper case."""
        return value.upper() if filter_name == "symbol" else value

    def payload(self, event: Event) -> Mapping[str, Any]:
        """The canonical ``data`` of the message for ``event``; called once per event."""
        data = event.data
        if isinstance(data, Mapping):
            return data
        raise TypeError(f"channel {self.name!r} got a {type(data).__name__}; override payload()")

    def check_published(self, data: Any) -> Mapping[str, Any]:
        """Validate a payload published from outside the process (the ingest API).

        Raises ``ValidationError`` naming what is wrong; returns the payload to fan out.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                "Invalid event",
                field="data",
                reason="data must be an object",
                details={"channel": self.name},
            )
        missing = [f for f in self.required_fields if data.get(f) is None]
        if missing:
            raise ValidationError(
                "Invalid event",
                field=f"data.{missing[0]}",
                reason="missing",
                details={"channel": self.name, "missing": missing},
            )
        return data

    def subscription_keys(self, principal: Principal) -> tuple[str, ...]:
        """For a per-user channel: the streams a subscriber receives, decided from the
        token alone (never from a client message). The default is the user's own; a
        channel with a :attr:`shared_stream` adds it for those who may see it. Asked at
        subscribe time and again when a token is refreshed, never per message."""
        return (principal.user_id,)

    async def keep(self, event: Event) -> Event:
        """Store an event published from outside before it is announced (only called
        when :attr:`keeps` is set); returns the event to announce. Raises an
        ``FxgateError`` (a conflict, the store unavailable) to refuse it."""
        return event

    def matches(self, filters: Filters, payload: Mapping[str, Any]) -> bool:
        """Whether a message matches a subscriber's filters (all of them must match)."""
        for name, accepted in filters.items():
            value = payload.get(self.filters[name].field)
            if value is None or str(value) not in accepted:
                return False
        return True

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        """Payloads a new subscriber gets before live messages (each is sent with
        ``"snapshot": true``). The default is none."""
        return ()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "messageType": self.message_type,
            "scope": self.scope,
            "filters": {k: f.description for k, f in self.filters.items()},
            "minRole": str(self.min_role),
            "description": self.description,
        }
