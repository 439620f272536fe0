"""What one connection's client has provably read: the mark of an unclean close.

The resume book (:mod:`fxgate.hub.resume`) notes where the user's streams stood when
their last connection closed. When the network died silently (no FIN: Wi-Fi gone, a
laptop lid closed), the server went on writing into the socket until the ping timeout
closed it, and what it wrote then never arrived; a mark taken at the close would count
it as seen. A pong proves more: the client read everything written before the ping it
answers (one TCP stream, in order). So the transport tells :class:`Acks` when it writes
a ping (``ping``: the positions of the user's resumable streams are noted then, a few
``Hub.position`` calls per ping interval, never per message) and when the pong comes
(``pong``: the note becomes the acknowledged position). Before any pong, the positions
right after the connection's subscription snapshots stand in (``settled``): what came
before is the state the snapshot sent, and a resume with nothing newer sends a fresh one;
a stream whose missed events the connection replayed stays where the replay began.

The mark (:meth:`mark`) is the acknowledged position, unless the server closed the
connection itself after flushing what it had (``close_clean``): then the positions at
that moment. A close the *client* sent is not clean here: what the server wrote while
it was on its way was never read (a Socket.IO client drops packets once it called
``disconnect()``, a browser's WebSocket once it is CLOSING), so those events are
replayed; a duplicate is the lesser evil (docs/dialects.md, "What a client may see twice").

No I/O, no clock: ``positions`` is the resume book's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

#: channel -> (offset, epoch), as ``Hub.position`` says it.
Positions = dict[str, tuple[int, str]]


class Acks:
    """One connection's acknowledged positions of its user's resumable streams."""

    __slots__ = (
        "_clean",
        "_confirmed",
        "_note",
        "_positions",
        "_replayed",
        "_token",
        "acked",
        "start",
    )

    def __init__(self, positions: Callable[[], Positions]) -> None:
        self._positions = positions
        #: What the client has provably read (or, before any pong, been sent as state).
        self.acked: Positions = positions()
        self._confirmed = False
        #: The ping on the wire: its token and the positions when it was written.
        self._note: tuple[bytes, Positions] | None = None
        self._token = 0
        self._clean: Positions | None = None
        #: Channels this connection replayed, from where (until a pong proves more).
        self._replayed: Positions = {}
        #: Where its live streams began: after its first subscriptions' snapshots, or
        #: where their replay began (None until then). What came before was not sent
        #: to it live; the resume book compares a closing connection's mark with it.
        self.start: Positions | None = None

    def settled(self, replayed: Mapping[str, tuple[int, str]] | None = None) -> None:
        """A subscription's snapshot went out: until a pong proves more, this is where
        an unclean close leaves the user. ``replayed``: channels whose missed events
        were replayed from these positions; they stay there, so a connection lost
        before its first pong has the replay sent again, not lost."""
        if self._confirmed:
            return
        self._replayed.update(replayed or {})
        acked = self._positions()
        for channel, since in self._replayed.items():
            if channel in acked:
                acked[channel] = since
        self.acked = acked
        if self.start is None:
            self.start = dict(acked)

    def rewound(self, channel: str, since: tuple[int, str]) -> None:
        """Events of ``channel`` after ``since`` were sent late, behind newer ones (the
        resume book's late replay): until a pong after them proves they were read, the
        client is taken to be at ``since`` there. A ping already on the wire was
        written before them, so its pong proves nothing about them."""
        acked = self.acked.get(channel)
        if acked is not None and not (acked[1] == since[1] and acked[0] < since[0]):
            self.acked[channel] = since
        self._note = None

    def ping(self, trusted: bool = True, keep: Collection[str] = ()) -> bytes:
        """A ping is being written; its payload (a token its pong must echo, where the
        protocol echoes one). ``trusted``: everything delivered to the connection so
        far is ahead of the ping on the wire (not held back during a snapshot, not in
        a backlog behind it); otherwise its pong proves nothing new. ``keep``: channels
        whose frames are still being prepared (a coalesced list not built yet) keep
        their acknowledged position."""
        self._token += 1
        token = str(self._token).encode()
        if not trusted:
            self._note = None
            return token
        note = self._positions()
        for channel in keep:
            if channel in self.acked:
                note[channel] = self.acked[channel]
        self._note = (token, note)
        return token

    def pong(self, token: bytes | None = None) -> None:
        """The client answered the ping (``token``: what its pong echoed; None where the
        protocol echoes nothing, Engine.IO's one ping at a time). A pong that answers no
        ping of ours (unsolicited, or to a ping already replaced) proves nothing."""
        note = self._note
        if note is None or (token is not None and token != note[0]):
            return
        self._note = None
        self.acked = note[1]
        self._confirmed = True

    def close_clean(self, keep: Collection[str] = ()) -> None:
        """The server is closing the connection after flushing everything queued: the
        client gets what was written up to now, so the mark is here (``keep`` as for
        :meth:`ping`)."""
        if self._clean is None:
            clean = self._positions()
            for channel in keep:
                if channel in self.acked:
                    clean[channel] = self.acked[channel]
            self._clean = clean

    @property
    def clean(self) -> bool:
        return self._clean is not None

    def mark(self) -> Positions:
        """Where the user's streams stand for this connection's client, at its close."""
        return self._clean if self._clean is not None else self.acked


__all__ = ["Acks", "Positions"]
