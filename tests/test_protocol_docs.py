"""docs/protocol.md's tables are the code's tables: every close and every error code."""

from __future__ import annotations

import re
from pathlib import Path

from fxgate.domain.errors import ERRORS, Disconnects

DOC = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()


def _rows(heading: str) -> list[list[str]]:
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| [0-9A-Z]", line)]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_every_disconnect_is_documented_with_its_reconnect_advice() -> None:
    documented = {(int(r[0]), r[1]): r[2] for r in _rows("Close codes")}
    in_code = {(int(d.code), d.reason): d.reconnect for d in Disconnects.all()}
    assert set(documented) == set(in_code)
    for key, reconnect in in_code.items():
        assert documented[key].startswith("yes" if reconnect else "no"), key


def test_every_error_code_is_documented_with_its_status_and_message() -> None:
    documented = {r[0]: (int(r[1]), r[2]) for r in _rows("Error codes")}
    assert documented == {str(c): (s.status, s.message) for c, s in ERRORS.items()}


def test_every_builtin_channel_is_in_the_channel_list_with_its_message_type() -> None:
    from fxgate.app.assembly import build_node
    from fxgate.config.settings import Settings

    section = DOC.split("## Channels\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {
        cells[0].strip("` "): cells[1].strip("` ")
        for cells in (row.strip("|").split("|") for row in rows)
    }
    node = build_node(Settings())
    assert documented == {name: ch.message_type for name, ch in node.hub.channels.items()}
