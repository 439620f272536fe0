"""REST routes (being written); mounted at ``/`` and ``/api/v1/``."""

from __future__ import annotations

from typing import Any


def rest_routes(node: Any) -> list[tuple[Any, ...]]:
    return []
