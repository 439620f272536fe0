"""The resume mark of a connection whose network died silently (issue 8 item 6, the
"dead socket" gap): what the server wrote after the client's last pong is replayed.

In memory: :class:`~fxgate.hub.acks.Acks` and the book's choice between the
acknowledged position (an unclean close) and the position at close (a clean one).
End to end: a real daemon with one-second pings, clients going through a TCP proxy that
can blackhole (``tests/blackhole.py``): no FIN, no RST, the daemon finds out by its
ping timeout, as when a laptop's lid closes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from fxgate.config.settings import DashboardSettings
from fxgate.domain.events import Event
from fxgate.domain.roles import Role
from fxgate.hub.acks import Acks
from fxgate.hub.hub import Hub
from fxgate.hub.resume import ResumeBook, missed_late
from fxgate.plugins.channel import Channel, Principal
from fxgate.protocol.dashboard.budget import SendBudget
from fxgate.protocol.dashboard.feed import UserFeed
from fxgate.protocol.dashboard.outgoing import Outgoing
from tests.blackhole import Proxy
from tests.conftest import Daemon, Daemons, until
from tests.dashboard_client import dashboard, first_of_each
from tests.protocol.test_socketio import Account, MarketData, Positions, account_event
from tests.sioclient import SioClient
from tests.test_seed004 import auth_frame
from tests.trading_helpers import HTTP, Admin, Trader
from tests.wsclient import Client

ACCOUNT = ["balance", "equity", "margin", "free_margin", "margin_level", "profit", "currency"]

# -- in memory ---------------------------------------------------------------------------


def _book() -> tuple[Hub, ResumeBook, Acks]:
    hub = Hub([Account(), Positions(), MarketData()], epoch="e1")
    book = ResumeBook(hub, window=120)
    hub.publish(account_event("u", 1.0))  # account offset 1, before the connection
    book.opened("u")
    acks = Acks(partial(book.positions, "u"))
    acks.settled()  # its subscriptions' snapshots went out
    return hub, book, acks


def test_an_unclean_close_marks_what_the_last_pong_acknowledged() -> None:
    hub, book, acks = _book()
    first = acks.ping()
    hub.publish(account_event("u", 2.0))  # written after the ping
    acks.pong(first)  # the client read up to offset 1
    acks.ping()  # written at offset 2 ...
    hub.publish(account_event("u", 3.0))  # ... and this one too: never answered
    book.closed("u", 10.0, acks.mark())  # the ping timeout closes it
    assert book.since("u", "account", 11.0) == (1, "e1")  # 2 and 3 are replayed
    assert book.since("u", "positions", 11.0) == (0, "e1")  # unchanged: its head


def test_before_any_pong_the_mark_is_right_after_the_snapshot() -> None:
    hub, book, acks = _book()
    hub.publish(account_event("u", 2.0))
    acks.ping()
    book.closed("u", 10.0, acks.mark())
    assert book.since("u", "account", 11.0) == (1, "e1")


def test_before_any_pong_a_replayed_stream_stays_where_its_replay_began() -> None:
    hub, book, acks = _book()
    hub.publish(account_event("u", 2.0))
    acks.settled({"account": (0, "e1")})  # offsets 1 and 2 replayed to this connection
    acks.settled()  # a later subscription of another channel keeps it
    book.closed("u", 10.0, acks.mark())
    assert book.since("u", "account", 11.0) == (0, "e1")  # the replay comes again


def test_a_pong_proves_nothing_for_a_ping_that_was_not_ahead_of_the_events() -> None:
    hub, book, acks = _book()
    hub.publish(account_event("u", 2.0))
    token = acks.ping(trusted=False)  # offset 2 was held back behind the ping
    acks.pong(token)
    stray = acks.ping()
    hub.publish(account_event("u", 3.0))
    acks.pong(b"not-" + stray)  # a pong that answers no ping of ours
    acks.pong(stray[:-1] + b"9")
    kept = acks.ping(keep=("account",))  # a list still being built: account stays
    acks.pong(kept)
    book.closed("u", 10.0, acks.mark())
    assert book.since("u", "account", 11.0) == (1, "e1")


def test_a_clean_close_marks_the_position_at_close() -> None:
    hub, book, acks = _book()
    acks.ping()
    hub.publish(account_event("u", 2.0))
    acks.close_clean()  # the server flushed, then closed
    hub.publish(account_event("u", 3.0))  # after the close: the next connection's
    book.closed("u", 10.0, acks.mark())
    assert acks.clean
    assert book.since("u", "account", 11.0) == (2, "e1")


def test_a_stream_without_messages_when_acknowledged_resumes_from_its_start() -> None:
    """Its first message may bring its own epoch (the Redis bus's, not the node's):
    the mark is the start of that epoch, so the replay finds it."""
    hub, book, acks = _book()
    acks.pong(acks.ping())  # positions: no message yet, (0, the node's epoch)
    hub.streams.get("positions", "u").epoch = "redis-e"  # as the Redis bus adopts it
    hub.publish(Event("position", {"ticket": 1}, user_id="u"))
    book.closed("u", 10.0, acks.mark())
    assert book.since("u", "positions", 11.0) == (0, "redis-e")


def test_without_acknowledgements_the_book_marks_the_heads() -> None:
    hub, book, _ = _book()
    hub.publish(account_event("u", 2.0))
    book.closed("u", 10.0)
    assert book.since("u", "account", 11.0) == (2, "e1")


# -- a reconnect before the close -------------------------------------------------------


class Fills(Channel):
    name = "trades"
    message_type = "trade"
    records = True


def fill(user: str, n: int) -> Event:
    return Event("trades", {"executionId": f"x{n}", "n": n}, user_id=user)


class Tab:
    """A connection as the book sees it: its acks, and what it was sent late."""

    def __init__(self, book: ResumeBook, user: str) -> None:
        self.acks: Acks | None = Acks(partial(book.positions, user))
        self.late: list[tuple[str, tuple[int, str], int]] = []

    def replay_late(self, channel: str, since: tuple[int, str], upto: int) -> None:
        self.late.append((channel, since, upto))


def _old_and_new() -> tuple[ResumeBook, Tab, Tab]:
    """A client's connection acknowledged fill 1; its network dies; fills 2 and 3 go
    into the dead socket; the client comes back on a new connection before the server
    notices (the old one is still open), whose streams begin at fill 3."""
    hub = Hub([Fills(), Account()], epoch="e1")
    book = ResumeBook(hub, window=120)
    old = Tab(book, "u")
    book.opened("u", old)
    assert old.acks is not None
    old.acks.settled()
    hub.publish(fill("u", 1))
    old.acks.pong(old.acks.ping())
    hub.publish(fill("u", 2))
    hub.publish(account_event("u", 2.0))
    hub.publish(fill("u", 3))
    new = Tab(book, "u")
    book.opened("u", new)
    assert new.acks is not None
    new.acks.settled()
    hub.publish(fill("u", 4))  # live on the new connection
    return book, old, new


def test_a_reconnect_before_the_close_gets_the_fills_the_dead_socket_took() -> None:
    book, old, new = _old_and_new()
    assert old.acks is not None
    book.closed("u", 10.0, old.acks.mark(), old)  # the ping timeout, at last
    # Fills 2 and 3 (offsets after the acknowledged 1, up to where the new one began),
    # and the account's first message: what to send of each is the connection's call.
    late = [("trades", (1, "e1"), 3), ("account", (0, "e1"), 1)]
    assert new.late == late
    assert book.since("u", "trades", 11.0) is None  # not a resume: a connection is open
    book.closed("u", 20.0, None, new)
    assert new.late == late  # the closing one is told nothing


class OtherEndpoint(Tab):
    pass


def test_only_a_connection_at_the_same_endpoint_can_be_the_reconnect() -> None:
    book, old, new = _old_and_new()
    other = OtherEndpoint(book, "u")
    book.opened("u", other)
    assert other.acks is not None
    assert old.acks is not None
    other.acks.settled()
    book.closed("u", 10.0, old.acks.mark(), old)
    assert [c for c, _, _ in new.late] == ["trades", "account"]
    assert other.late == []


def test_one_connection_failing_its_late_replay_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub([Fills()], epoch="e1")
    book = ResumeBook(hub, window=120)
    old, broken, new = Tab(book, "u"), Tab(book, "u"), Tab(book, "u")

    def fail(channel: str, since: tuple[int, str], upto: int) -> None:
        raise RuntimeError("a bug in one dialect")

    broken.replay_late = fail  # type: ignore[method-assign]
    book.opened("u", old)
    assert old.acks is not None
    old.acks.settled()
    old.acks.pong(old.acks.ping())
    hub.publish(fill("u", 1))  # into the dead socket
    for tab in (broken, new):  # the failing one is asked first
        book.opened("u", tab)
        assert tab.acks is not None
        tab.acks.settled()
    book.closed("u", 10.0, old.acks.mark(), old)
    assert new.late == [("trades", (0, "e1"), 1)]
    assert "late replay failed" in caplog.text


def env(offset: int, **data: object) -> dict[str, object]:
    return {"offset": offset, "data": data}


def test_late_records_are_every_one_up_to_where_the_stream_began() -> None:
    envelopes = [env(2, n=2), env(3, n=3), env(4, n=4)]
    assert missed_late(envelopes, 3, records=True, item="ticket") == envelopes[:2]


def test_late_state_is_the_latest_per_item_that_nothing_newer_replaced() -> None:
    envelopes = [
        env(2, ticket=7, status="placed"),
        env(3, ticket=8, status="placed"),
        env(4, ticket=7, status="filled"),
        env(5, ticket=9, status="placed"),  # (where the new connection began: 5)
        env(6, ticket=8, status="cancelled"),  # live on the new connection: newer
        env(7, ticket=9, status="filled"),
    ]
    # 7: its fill, the latest before the stream began. 8 and 9 changed after it (sent
    # live, newer): nothing older of them.
    assert missed_late(envelopes, 5, records=False, item="ticket") == [envelopes[2]]


def test_late_state_without_its_item_field_is_kept_as_it_is() -> None:
    envelopes = [env(2, status="a"), env(3, status="b")]
    assert missed_late(envelopes, 3, records=False, item="ticket") == envelopes


def test_a_tab_older_than_the_last_pong_gets_nothing_late() -> None:
    """A second tab that was open before the client's last acknowledgement saw every
    event the dead one missed, live."""
    hub = Hub([Fills(), Account()], epoch="e1")
    book = ResumeBook(hub, window=120)
    first, second = Tab(book, "u"), Tab(book, "u")
    for tab in (first, second):
        book.opened("u", tab)
        assert tab.acks is not None
        tab.acks.settled()
    hub.publish(fill("u", 1))
    assert first.acks is not None
    first.acks.pong(first.acks.ping())
    hub.publish(fill("u", 2))
    book.closed("u", 10.0, first.acks.mark(), first)
    assert second.late == []


def test_a_connection_still_subscribing_gets_what_it_missed_once_it_has_subscribed() -> None:
    """The old one closes while the reconnect is still reading its snapshots: nothing
    yet (its streams have no start to compare with), then, when they begin, what lies
    between the old mark and that start, once."""
    book, old, new = _old_and_new()
    late = Tab(book, "u")
    book.opened("u", late)  # no settled() yet
    assert old.acks is not None
    assert late.acks is not None
    book.closed("u", 10.0, old.acks.mark(), old)
    assert late.late == []
    late.acks.settled()  # its streams begin after fill 4
    book.began(late)
    assert late.late == [("trades", (1, "e1"), 4), ("account", (0, "e1"), 1)]
    book.began(late)
    assert len(late.late) == 2  # once
    assert new.late == [("trades", (1, "e1"), 3), ("account", (0, "e1"), 1)]


def test_a_connection_that_closes_while_subscribing_is_owed_nothing() -> None:
    book, old, _ = _old_and_new()
    late = Tab(book, "u")
    book.opened("u", late)
    assert old.acks is not None
    book.closed("u", 10.0, old.acks.mark(), old)
    book.closed("u", 11.0, None, late)
    book.began(late)  # a session that raced its own close: nothing kept for it
    assert late.late == []


def test_what_was_sent_late_is_not_acknowledged_by_a_ping_before_it() -> None:
    _, _, new = _old_and_new()
    assert new.acks is not None
    token = new.acks.ping()  # on the wire before the late replay
    new.acks.rewound("trades", (1, "e1"))
    new.acks.pong(token)
    assert new.acks.mark()["trades"] == (1, "e1")  # sent again if this one dies too
    new.acks.pong(new.acks.ping())
    assert new.acks.mark()["trades"] == (4, "e1")


class Reads:
    async def summary(self, user_id: str) -> dict[str, Any]:
        return {}

    async def recent_trades(self, user_id: str, n: int) -> list[dict[str, Any]]:
        return []


class Later:
    """Timers that run nothing until told (``run``): a flush the test chooses when."""

    def __init__(self) -> None:
        self.due: list[tuple[Any, tuple[Any, ...]]] = []

    def time(self) -> float:
        return 100.0

    def call_later(self, delay: float, callback: Any, *args: Any) -> Any:
        self.due.append((callback, args))
        return self

    def cancel(self) -> None:
        pass

    def run(self) -> None:
        due, self.due = self.due, []
        for callback, args in due:
            callback(*args)


class Plain:
    def frame(self, payload: bytes) -> bytes:
        return payload


class Screen:
    """A dashboard connection as its feed sees it (``Viewer``)."""

    def __init__(self) -> None:
        self.types = {"notification", "trading_status", "analytics"}
        self.framer = Plain()
        self.got: list[bytes] = []
        self.out = self.push

    def push(self, frame: bytes, conflate_key: object | None = None) -> None:
        self.got.append(frame)

    def kick(self, disconnect: object) -> None:
        pass


def notes_in(frames: list[bytes] | list[Outgoing]) -> list[str]:
    """The notification ids among frames (or messages), in order."""
    out = []
    for f in frames:
        msg = json.loads(f.payload if isinstance(f, Outgoing) else f)
        if msg["type"] == "notification":
            out.append(msg["data"]["id"])
    return out


async def test_a_dashboard_is_notified_late_of_fills_before_it_joined_but_not_twice() -> None:
    """Fill 1 was notified to the old screen before the new one joined, fill 2 was still
    waiting for the flush when it joined (so the new one gets it with the old), fill 3
    came after: late, the new screen is owed fill 1's note only."""
    hub = Hub([Fills()], epoch="e1")
    timers = Later()
    feed = UserFeed(
        principal=Principal("u", Role.TRADER),
        hub=hub,
        reads=Reads(),
        settings=DashboardSettings(),
        budget=SendBudget(100),
        timers=timers,
        clock=lambda: 1_700_000_000.0,
    )
    await feed.ready()
    old, new = Screen(), Screen()
    feed.add(old)
    hub.publish(fill("u", 1))
    timers.run()
    hub.publish(fill("u", 2))  # queued; the flush has not run yet
    feed.add(new)
    began = hub.position("trades", "u")[0]
    timers.run()
    hub.publish(fill("u", 3))
    timers.run()
    assert notes_in(old.got) == ["notif_fill_x1", "notif_fill_x2", "notif_fill_x3"]
    assert notes_in(new.got) == ["notif_fill_x2", "notif_fill_x3"]
    late = feed.late_notes(new, "trades", (0, "e1"), began)
    assert notes_in(late) == ["notif_fill_x1"]
    assert feed.late_notes(new, "account", (0, "e1"), began) == []  # no toasts of state
    assert notes_in(feed.late_notes(Screen(), "trades", (0, "e1"), began)) == [
        "notif_fill_x1",
        "notif_fill_x2",
    ]


# -- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast(module_daemons: Daemons) -> Daemon:
    """A quiet market with one-second pings (Tornado's and Engine.IO's): a dead
    connection is closed by its ping timeout within about two seconds."""
    return module_daemons.start(quiet=True, FXGATE_WS_PING_INTERVAL="1", FXGATE_WS_PING_TIMEOUT="1")


def live(user: Trader, endpoint: str) -> int:
    """The user's connections the daemon holds at ``endpoint`` (``GET /auth/sessions``,
    which drops one in the same step as its session closes and the mark is taken)."""
    r = user.get("/auth/sessions")
    assert r.status_code == 200, r.text
    return sum(1 for s in r.json()["data"] for c in s["connections"] if c["endpoint"] == endpoint)


async def closed_by_daemon(user: Trader, endpoint: str, why: str = "the ping timeout") -> None:
    """Until the daemon has closed the user's connection at ``endpoint``: the ping timeout
    (Tornado's, then its close handshake's few seconds; Engine.IO's interval plus
    timeout), or a close."""
    await until(lambda: live(user, endpoint) == 0, what=why, timeout=20)


async def seed003(url: str, token: str) -> Client:
    c = await Client.connect(url, ping_interval=None, close_timeout=1)
    await c.send({"type": "auth", "token": token})
    assert (await c.recv())["type"] == "auth_success"
    return c


async def test_ws_a_fill_written_into_a_dead_socket_is_replayed(fast: Daemon) -> None:
    Admin(fast).quote("EURUSD", "1.08490", "1.08500")
    ivy = Trader.issued(fast)
    proxy = await Proxy(fast.port).start()
    try:
        c = await seed003(proxy.url("/ws"), ivy.token)
        seen = ivy.buy(0.3)
        await c.wait_for(lambda m: m["type"] == "order_update" and m["data"]["id"] == seen["id"])
        await c.barrier()
        # A ping written after it, answered: the daemon knows this much arrived.
        await proxy.ponged_after(proxy.mark(), ping=(0x9, None), pong=(0xA, None))
        proxy.blackhole()
        order = ivy.buy(0.1)  # filled at once; its updates go into the dead socket
        await closed_by_daemon(ivy, "/ws")
    finally:
        await proxy.close()

    again = await seed003(fast.ws_url("/ws"), ivy.token)
    try:
        msgs = await again.barrier()
        updates = [m["data"] for m in msgs if m["type"] == "order_update"]
        # The fill itself: today's state alone (pending orders) has no such order.
        assert [o["status"] for o in updates if o["id"] == order["id"]][-1:] == ["filled"]
        # ... and from the last pong on: what it acknowledged is not sent again.
        assert {o["id"] for o in updates} == {order["id"]}, updates
        sizes = [float(m["data"]["quantity"]) for m in msgs if m["type"] == "position_update"]
        assert sizes, msgs
        assert set(sizes) == {0.1}, msgs
    finally:
        await again.close()
        await c.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_socketio_events_written_into_a_dead_socket_are_replayed(
    fast: Daemon, transport: str
) -> None:
    Admin(fast).quote("GBPUSD", "1.27000", "1.27010")
    kim = Trader.issued(fast)
    channels = {"channels": ["positions", "orders", "account"]}
    proxy = await Proxy(fast.port).start()
    c = SioClient(proxy.http_url())
    try:
        await c.connect(kim.token, [transport])
        await c.emit("subscribe", channels)
        assert await c.wait("positions_update") == []
        await c.heartbeat(1)
        # A canonical connection of the same user sees, with offsets, what is published.
        observer = await kim.socket("account")
        await observer.barrier()
        proxy.blackhole()
        kim.buy(0.1, symbol="GBPUSD")
        gap = [m["data"] for m in await observer.barrier() if m["type"] == "account"]
        assert gap
        await observer.close()
        await closed_by_daemon(kim, "/socket.io/")
    finally:
        await proxy.close()

    again = await SioClient(fast.url("")).connect(kim.token, ["websocket"])
    try:
        await again.emit("subscribe", channels)
        ack = await again.wait("subscribed")
        # Replayed from where the last pong left the client, not "nothing missed".
        assert "account" in ack.get("recovered", []), ack
        positions = await again.wait("positions_update")
        assert [p["symbol"] for p in positions] == ["GBPUSD"]
        await again.heartbeat(2)
        assert again.seen("account_update") == [{k: m[k] for k in ACCOUNT} for m in gap]
    finally:
        await again.close()
        await c.close()


async def trading_login(url: str, key: str, secret: str) -> Client:
    c = await Client.connect(url, ping_interval=None, close_timeout=1)
    await c.send(auth_frame(key, secret))
    assert (await c.type("auth"))["status"] == "success"
    return c


def trading_bot(daemon: Daemon) -> tuple[Trader, str, str]:
    """A trader with an API key (id, secret) for ``/ws/trading``, EURGBP quoted."""
    Admin(daemon).quote("EURGBP", "0.85000", "0.85010")
    bot = Trader.logged_in(daemon)
    r = HTTP.post(daemon.url("/api/v1/auth/api-keys"), headers=bot.headers, json={"name": "bot"})
    assert r.status_code == 201, r.text
    return bot, r.json()["data"]["id"], r.json()["data"]["secret"]


@contextlib.asynccontextmanager
async def fill_into_a_dead_trading_socket(
    daemon: Daemon,
) -> AsyncIterator[tuple[Trader, str, str, dict[str, Any]]]:
    """A bot logged in on ``/ws/trading`` through the proxy, whose network then dies
    silently; a market order (filled at once) whose updates go into the dead socket.
    Yields the bot, its API key and secret, and the order; closes both ends after."""
    bot, key, secret = trading_bot(daemon)
    proxy = await Proxy(daemon.port).start()
    c: Client | None = None
    try:
        c = await trading_login(proxy.url("/ws/trading"), key, secret)
        await c.barrier()
        proxy.blackhole()
        yield bot, key, secret, bot.buy(0.1, symbol="EURGBP")
    finally:
        await proxy.close()
        if c is not None:
            await c.close()


async def test_ws_trading_a_fill_written_into_a_dead_socket_is_replayed(fast: Daemon) -> None:
    """Seed 004's trading socket sends no state at login: without the replay, a fill
    missed while the network was dead would never reach it."""
    async with fill_into_a_dead_trading_socket(fast) as (bot, key, secret, order):
        await closed_by_daemon(bot, "/ws/trading")

    again = await trading_login(fast.ws_url("/ws/trading"), key, secret)
    try:
        msgs = await again.barrier()
        updates = [m["data"] for m in msgs if m["type"] == "order_update"]
        assert [o["status"] for o in updates if o["id"] == order["id"]][-1:] == ["filled"], msgs
    finally:
        await again.close()


async def test_ws_trading_a_reconnect_before_the_close_gets_the_fill_late(fast: Daemon) -> None:
    """The client comes back on a new connection while the daemon still holds the dead
    one: no resume at login (another connection is open), and the fill written into
    the dead socket reaches the new one when the ping timeout closes the old."""
    async with fill_into_a_dead_trading_socket(fast) as (bot, key, secret, order):
        again = await trading_login(fast.ws_url("/ws/trading"), key, secret)
        try:
            at_login = await again.barrier()
            assert live(bot, "/ws/trading") == 2, "the dead connection closed too soon"
            assert not [m for m in at_login if m["type"] == "trade_execution"], at_login
            late = await again.read_until(
                lambda got: any(
                    m["type"] == "trade_execution" and m["data"]["orderId"] == order["id"]
                    for m in got
                ),
                timeout=20,
            )
            assert live(bot, "/ws/trading") == 1
            late += await again.barrier()  # sent in one go: the rest is here too
            (fill,) = [m for m in late if m["type"] == "trade_execution"]
            assert fill["data"]["side"] == "buy"
            # Of the order, its latest state only (filled), not the placement before it.
            orders = [m["data"] for m in late if m["type"] == "order_update"]
            assert [(o["id"], o["status"]) for o in orders] == [(order["id"], "filled")], late
            assert [m["type"] for m in late].count("position_update") == 1, late
            # Once: the late replay is not sent again.
            later = await again.barrier()
            assert not [m for m in later if m["type"].endswith(("_execution", "_update"))]
        finally:
            await again.close()


async def test_dashboard_a_fill_notified_into_a_dead_socket_is_notified_again(
    fast: Daemon,
) -> None:
    Admin(fast).quote("NZDUSD", "0.60000", "0.60010")
    max_ = Trader.issued(fast)
    proxy = await Proxy(fast.port).start()
    try:
        url = proxy.url("/ws/dashboard") + f"?token={max_.token}"
        c = await Client.connect(url, ping_interval=None, close_timeout=1)
        assert (await c.recv())["type"] == "connection"
        await first_of_each(c, {"trading_status", "analytics"})
        await c.barrier()
        proxy.blackhole()
        max_.buy(0.1, symbol="NZDUSD")  # its notification goes into the dead socket
        await closed_by_daemon(max_, "/ws/dashboard")
    finally:
        await proxy.close()

    again = await dashboard(fast, max_.token)
    try:
        msgs = await again.read_until(
            lambda ms: any(
                m["type"] == "notification" and m["data"]["type"] == "order_filled" for m in ms
            )
        )
        [note] = [m for m in msgs if m["type"] == "notification"]
        assert "NZDUSD" in note["data"]["message"]
    finally:
        await again.close()
        await c.close()


async def test_dashboard_a_reconnect_before_the_close_gets_the_fill_notified_late(
    fast: Daemon,
) -> None:
    """The dashboard comes back on a new connection while the daemon still holds the
    dead one: the new one shows the position (the state as it stands at the join) but
    was not there for the fill's toast, and gets it when the ping timeout closes the
    old one, once."""
    Admin(fast).quote("AUDUSD", "0.65000", "0.65010")
    ivy = Trader.issued(fast)
    proxy = await Proxy(fast.port).start()
    c: Client | None = None
    try:
        c = await Client.connect(
            proxy.url("/ws/dashboard") + f"?token={ivy.token}", ping_interval=None, close_timeout=1
        )
        assert (await c.recv())["type"] == "connection"
        await first_of_each(c, {"trading_status", "analytics"})
        await c.barrier()
        proxy.blackhole()
        ivy.buy(0.1, symbol="AUDUSD")  # its notification goes into the dead socket
        again = await dashboard(fast, ivy.token)
        try:
            joined = await first_of_each(again, {"trading_status"})
            [held] = joined["trading_status"]["data"]["open_positions"]
            assert held["symbol"] == "AUDUSD"
            at_join = await again.barrier()
            assert live(ivy, "/ws/dashboard") == 2, "the dead connection closed too soon"
            assert not [m for m in at_join if m["type"] == "notification"], at_join

            def filled(ms: list[dict[str, Any]]) -> bool:
                return any(
                    m["type"] == "notification" and m["data"]["type"] == "order_filled" for m in ms
                )

            late = await again.read_until(filled, timeout=20)
            assert live(ivy, "/ws/dashboard") == 1
            late += await again.barrier()
            [note] = [m for m in late if m["type"] == "notification"]
            assert "AUDUSD" in note["data"]["message"], note
            later = await again.barrier()
            assert not [m for m in later if m["type"] == "notification"], later
        finally:
            await again.close()
    finally:
        await proxy.close()
        if c is not None:
            await c.close()


async def test_ws_a_clean_close_resumes_exactly_after_what_was_acknowledged(
    fast: Daemon,
) -> None:
    Admin(fast).quote("USDCHF", "0.88000", "0.88010")
    lou = Trader.issued(fast)
    proxy = await Proxy(fast.port).start()
    try:
        c = await seed003(proxy.url("/ws"), lou.token)
        await c.barrier()
        first = lou.buy(0.1, symbol="USDCHF")
        await c.wait_for(lambda m: m["type"] == "order_update" and m["data"]["id"] == first["id"])
        await c.barrier()
        # A ping written after all that, answered: the daemon knows the client read it.
        await proxy.ponged_after(proxy.mark(), ping=(0x9, None), pong=(0xA, None))
        await c.close()  # the client's close frame: a clean close
        await closed_by_daemon(lou, "/ws", "the close")
    finally:
        await proxy.close()

    second = lou.buy(0.2, symbol="USDCHF")
    again = await seed003(fast.ws_url("/ws"), lou.token)
    try:
        msgs = await again.barrier()
        ids = {m["data"]["id"] for m in msgs if m["type"] == "order_update"}
        assert ids == {second["id"]}, msgs  # the missed one, and nothing seen before
        sizes = [float(m["data"]["quantity"]) for m in msgs if m["type"] == "position_update"]
        assert sizes, msgs
        assert set(sizes) == {0.2}, msgs  # the second position's only
    finally:
        await again.close()


async def test_ws_a_server_close_after_a_flush_marks_the_close_not_the_last_pong(
    market: Daemon,
) -> None:
    """The shared quiet daemon pings every 30 s: no pong comes during this test, so
    only a clean close (the token expires: the server flushes, then closes) can tell
    the book that the client got the first order."""
    Admin(market).quote("USDCAD", "1.36000", "1.36010")
    nia = Trader.issued(market)
    c = await seed003(market.ws_url("/ws"), market.token(nia.user_id, ttl=3))
    try:
        first = nia.buy(0.1, symbol="USDCAD")
        await c.wait_for(lambda m: m["type"] == "order_update" and m["data"]["id"] == first["id"])
        assert await c.closed_with(timeout=10) == 4001  # the expiry, after what was queued
        await closed_by_daemon(nia, "/ws", "the close")
    finally:
        await c.close()

    second = nia.buy(0.2, symbol="USDCAD")
    again = await seed003(market.ws_url("/ws"), nia.token)
    try:
        msgs = await again.barrier()
        ids = {m["data"]["id"] for m in msgs if m["type"] == "order_update"}
        assert ids == {second["id"]}, msgs
    finally:
        await again.close()
