"""A test plugin for the hooks the ticker does not use: a health component whose answer
the test chooses, and a shutdown hook that leaves a line in the daemon's log.

Its implementations take no arguments (a hook implementation may accept any subset of
the hook's), so they hold whatever the hooks are given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from fxgate.plugins.api import hookimpl

log = logging.getLogger(__name__)

SHUTDOWN_LINE = "test-lifecycle: the shutdown hook ran"


@hookimpl
def health_checks() -> Mapping[str, Callable[[], str]]:
    return {"test-lifecycle": lambda: os.environ.get("TEST_LIFECYCLE_HEALTH", "HEALTHY")}


@hookimpl
def shutdown() -> None:
    log.warning(SHUTDOWN_LINE)
