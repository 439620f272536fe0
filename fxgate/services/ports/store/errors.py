"""The errors every store area raises, whatever the backend.

Both are ``FxgateError`` subclasses, so the web layer answers 409 and 503 without
special cases.
"""

from __future__ import annotations

from fxgate.domain.errors import ConflictError, ErrorCode, FxgateError


class StoreError(FxgateError):
    """A store failure that is not the client's doing (a bug or a broken deployment)."""


class StoreConflictError(ConflictError, StoreError):
    """A write would break a uniqueness rule (email, client order id, key id, ...).

    The message names the rule, never the other record, so it is safe to show.
    """


class StoreUnavailableError(StoreError):
    """The backend cannot be reached right now; retrying later may succeed."""

    code = ErrorCode.SERVICE_UNAVAILABLE


class StoreFencedError(StoreUnavailableError):
    """This node may not write trading records at all any more (a cluster node that lost
    the leader lease): an expected, final refusal, not worth a retry or a traceback."""


class StaleFenceError(StoreFencedError):
    """A trading write carrying a fencing token lower than the highest the store has
    seen: a newer leader has written since, so this node's term is over, whatever its
    own clock says (a Redis failover that lost the lease, a pause the clock missed)."""
