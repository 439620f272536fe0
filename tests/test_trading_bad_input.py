"""Bad trading requests get seed 003's status and error code, and write nothing.

One trader holds an open position and a pending order; every bad request below is sent
as that trader (or about their records), and afterwards their orders, positions, deals
and balance are exactly what they were. Status codes (docs/rest.md): 422
VALIDATION_ERROR for a body or query that does not fit, 400 for trading refusals, 401
AUTHENTICATION_ERROR, 403 AUTHORIZATION_ERROR, 404 NOT_FOUND_ERROR for a record that is
not yours.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Daemon
from tests.trading_helpers import Admin, Trader, bearer, error, running


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running(Path(tmp_path_factory.mktemp("bad"))) as d:
        Admin(d).quote("EURUSD", "1.08490", "1.08500")
        yield d


@dataclass_like := None  # noqa: B018 (placeholder removed below)
