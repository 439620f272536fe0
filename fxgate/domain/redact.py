"""Keeping secrets out of what dashboards are shown (the ``logs`` channel's ``extra``).

Whoever writes a log line for a dashboard (a service, a back end publishing one) passes
ids, symbols and codes; this is the net under them: keys that name a secret (token,
password, secret, HMAC, signature, authorization, cookie, credential, private key, API
key) are dropped, and so is any value shaped like a JWT, whatever key carries it. Only
JSON scalars pass, so no object can smuggle a secret in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

Scalar = str | int | float | bool | None

MAX_VALUE = 200
MAX_EXTRA = 20

_SECRET_KEY = re.compile(
    r"token|passw|secret|hmac|signature|authori[sz]ation|cookie|credential|private|api_?key$",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def looks_like_a_token(value: str) -> bool:
    return bool(_JWT.search(value))


def redact_text(text: str) -> str:
    """``text`` with anything shaped like a JWT replaced (a message quoting an error)."""
    return _JWT.sub("[redacted]", text) if "eyJ" in text else text


def safe_extra(extra: Mapping[str, Any]) -> dict[str, Scalar]:
    """``extra`` without secrets: scalar values only (finite numbers), strings cut to
    ``MAX_VALUE`` characters, at most ``MAX_EXTRA`` fields, and no key or value that
    looks like a credential."""
    out: dict[str, Scalar] = {}
    for key, value in extra.items():
        if len(out) >= MAX_EXTRA or not isinstance(key, str) or is_secret_key(key):
            continue
        if isinstance(value, str):
            if not looks_like_a_token(value):
                out[key[:64]] = value[:MAX_VALUE]
        elif isinstance(value, float):
            if math.isfinite(value):
                out[key[:64]] = value
        elif value is None or isinstance(value, bool | int):
            out[key[:64]] = value
    return out
