"""``/auth/sessions``: a user's live login sessions and sockets, and ending one.

A session is what one login started: its refresh-token family (``fam_…``), with every
socket opened with one of its access tokens, on any endpoint. Sockets opened with a
token that no login issued (``fxgate token issue``) are grouped by that token
(``tok_…``), and ``/ws/trading`` sockets, which log in with a signed API key and hold
no token, by that key (``key_…``). Ending a session revokes it (the refresh family and
its access tokens, or the one token; an API-key session revokes nothing, the key stays
active) and closes its sockets with 4001 "Session ended"; the user can only see and end
their own. Live sockets are this process's (``node.connections``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import Field

from fxgate.domain.errors import Disconnects, NotFoundError
from fxgate.domain.timefmt import iso_ms
from fxgate.hub.connections import LiveConnection
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import ResponseModel


class ConnectionOut(ResponseModel):
    id: str
    endpoint: str = Field(description="The WebSocket path, e.g. /ws/dashboard.")
    connected_at: str
    remote_address: str


class SessionOut(ResponseModel):
    id: str = Field(
        description="fam_<family> for a login, tok_<jti> for an issued token,"
        " key_<api key id> for /ws/trading sockets logged in with an API key."
    )
    kind: str = Field(description="login, token or api_key.")
    current: bool = Field(description="Whether this request's token belongs to it.")
    created_at: str | None = Field(description="When its refresh token was last issued.")
    expires_at: str | None = Field(description="null for an API-key session (no token).")
    connections: list[ConnectionOut]


class EndedOut(ResponseModel):
    id: str
    closed_connections: int
    revoked_tokens: int


def _conn_out(c: LiveConnection) -> ConnectionOut:
    return ConnectionOut(
        id=c.id, endpoint=c.endpoint, connected_at=iso_ms(c.connected_at), remote_address=c.remote
    )


def _conns(conns: Iterable[LiveConnection]) -> list[ConnectionOut]:
    return [_conn_out(c) for c in sorted(conns, key=lambda c: c.connected_at)]


class SessionsHandler(ApiHandler):
    path = "/auth/sessions"
    tag = "auth"

    @op.get(
        summary="Your live sessions: logins (refresh tokens) and their sockets",
        response=list[SessionOut],
    )
    async def list_sessions(self) -> list[SessionOut]:
        claims = self.claims
        conns = self.node.connections.of_user(claims.sub)
        out = []
        for token in await self.node.store.sessions.live_refresh_tokens(claims.sub):
            fam = token.family_id
            out.append(
                SessionOut(
                    id=f"fam_{fam}",
                    kind="login",
                    current=claims.fam == fam,
                    created_at=iso_ms(token.created_at.timestamp()),
                    expires_at=iso_ms(token.expires_at.timestamp()),
                    connections=_conns(c for c in conns if c.claims.fam == fam),
                )
            )
        families = {s.id for s in out}
        by_token: dict[str, list[LiveConnection]] = {}
        by_key: dict[str, list[LiveConnection]] = {}
        for c in conns:
            if c.api_key is not None:
                by_key.setdefault(c.api_key, []).append(c)
            elif c.claims.fam is None or f"fam_{c.claims.fam}" not in families:
                by_token.setdefault(c.claims.jti, []).append(c)
        for jti, group in by_token.items():
            out.append(
                SessionOut(
                    id=f"tok_{jti}",
                    kind="token",
                    current=claims.jti == jti,
                    created_at=None,
                    expires_at=iso_ms(group[0].claims.exp),
                    connections=_conns(group),
                )
            )
        for key, group in by_key.items():
            out.append(
                SessionOut(
                    id=f"key_{key}",
                    kind="api_key",
                    current=False,  # a REST request carries a token, never this login
                    created_at=None,
                    expires_at=None,
                    connections=_conns(group),
                )
            )
        return out


class SessionHandler(ApiHandler):
    path = "/auth/sessions/{session_id}"
    tag = "auth"

    @op.delete(
        summary="End one of your sessions: revoke it and close its sockets (4001)",
        response=EndedOut,
        errors=(404,),
    )
    async def end(self, session_id: str) -> EndedOut:
        claims = self.claims
        conns = self.node.connections.of_user(claims.sub)
        tokened = [c for c in conns if c.api_key is None]
        revoked = 0
        if session_id.startswith("fam_"):
            fam = session_id[4:]
            live = await self.node.store.sessions.live_refresh_tokens(claims.sub)
            doomed = [c for c in tokened if c.claims.fam == fam]
            if not doomed and all(t.family_id != fam for t in live):
                raise NotFoundError("Session not found", details={"id": session_id})
            revoked = await self.ctx.sessions.revoke_family(fam)
        elif session_id.startswith("tok_"):
            jti = session_id[4:]
            doomed = [c for c in tokened if c.claims.jti == jti]
            if not doomed:
                raise NotFoundError("Session not found", details={"id": session_id})
            exp = datetime.fromtimestamp(doomed[0].claims.exp, UTC)
            await self.node.store.sessions.revoke_jti(jti, exp)
            revoked = 1
        elif session_id.startswith("key_"):
            # The sockets only: the key stays active (DELETE /auth/api-keys/:id revokes
            # it), so its program may log in again, as after any 4001.
            key = session_id[4:]
            doomed = [c for c in conns if c.api_key == key]
            if not doomed:
                raise NotFoundError("Session not found", details={"id": session_id})
        else:
            raise NotFoundError("Session not found", details={"id": session_id})
        for c in doomed:
            c.close(Disconnects.SESSION_ENDED)
        await self.node.store.audit.append(
            claims.sub, "auth.session_end", session_id, {"connections": len(doomed)}
        )
        return EndedOut(id=session_id, closed_connections=len(doomed), revoked_tokens=revoked)


HANDLERS: tuple[type[ApiHandler], ...] = (SessionsHandler, SessionHandler)
