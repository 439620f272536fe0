"""``/openapi.json`` tells the truth: Schemathesis fuzzes a real daemon from it.

Every operation is called with generated valid and invalid inputs (with an admin token,
so the handlers run past authentication) and every answer must be no 5xx, a status the
document lists, and a body matching the documented schema; an input the document
forbids must be refused; unsupported methods must get 405 with ``Allow``. (Not
``positive_data_acceptance``: a schema-valid order can still be refused for margin,
volume step or market hours, which no schema can say.) The daemon's log must hold no
traceback afterwards: everything a generator can send is a client error. Bounded: a
few examples per operation, about 20 s on two cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Daemon, Daemons

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "unsupported_method",
        "allow_header_conformance",
        "negative_data_rejection",
    ]
)


@pytest.fixture(scope="module")
def fuzzed(module_daemons: Daemons) -> Daemon:
    return module_daemons(
        FXGATE_SERVER_RATE_LIMIT_PER_MINUTE="1000000",
        FXGATE_AUTH_LOGIN_ATTEMPTS_PER_MINUTE="1000000",
    )


@pytest.mark.timeout(180)
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    fuzzed: Daemon, tmp_path: Path
) -> None:
    token = fuzzed.token("schemathesis-admin", "admin")
    cli = Path(sys.executable).parent / "schemathesis"
    out = subprocess.run(
        [
            str(cli), "run", fuzzed.url("/openapi.json"),
            "-H", f"Authorization: Bearer {token}",
            "--checks", CHECKS,
            "--max-examples", "10",
            "--seed", "1",
            "--workers", "2",
            "--request-timeout", "10",
            "--no-color",
            # Logging out would revoke the token the rest of the run needs.
            "--exclude-path", "/auth/logout",
            "--generation-database", "none",
        ],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-2000:]
    assert "Authentication failed" not in out.stdout, out.stdout[-4000:]
    log = fuzzed.log()
    assert "Traceback" not in log, log[-4000:]
