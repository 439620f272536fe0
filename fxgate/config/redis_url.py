"""What ``bus.redis_url`` names: one Redis, or a master found through Redis Sentinel.

One setting carries either form, so every node's config names its Redis the same way and
``FXGATE_BUS_REDIS_URL`` stays the one secret-bearing variable:

- ``redis://``, ``rediss://`` (TLS), ``unix://``: redis-py's own URL, passed as it is;
- ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]`` and
  ``rediss+sentinel://`` (TLS to the sentinels and the master): the sentinels to ask
  (port 26379 unless given), the master's service name, the database. The password is
  the master's (and its replicas'); the sentinels are asked without one.

Parsing lives here, beside the settings, and imports no Redis client: ``fxgate config
check``, start-up and ``--show`` (which prints the URL redacted) all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
SENTINEL_FORM = "redis+sentinel://[:password@]host:26379[,host:port...]/master[/db]"


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def is_sentinel(url: str) -> bool:
    return url.partition("://")[0].lower() in SENTINEL_SCHEMES


def parse_sentinel(url: str) -> SentinelTarget:
    """The parts of a ``redis+sentinel://`` URL; ValueError (its text one clause,
    password-free) when one is missing or malformed."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError("is not a redis+sentinel:// URL")
    rest, _, query = rest.partition("?")
    if query:
        raise ValueError("takes no ?options (the sentinel form has none)")
    netloc, _, path = rest.partition("/")
    creds, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = creds.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = []
    for item in hosts.split(","):
        host, port = item.strip(), ""
        if host.startswith("["):  # [IPv6]:port
            host, _, tail = host[1:].partition("]")
            port = tail.removeprefix(":")
        elif ":" in host:
            host, _, port = host.rpartition(":")
        if not host:
            raise ValueError(f"names no sentinel host ({SENTINEL_FORM})")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"has a bad sentinel port {port!r} ({SENTINEL_FORM})")
        sentinels.append((host, int(port) if port else SENTINEL_PORT))
    parts = path.rstrip("/").split("/")
    if not parts[0]:
        raise ValueError(f"names no master ({SENTINEL_FORM})")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"has a bad database {'/'.join(parts[1:])!r} ({SENTINEL_FORM})")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        service=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=username,
        password=password,
        tls=scheme.lower() == "rediss+sentinel",
    )


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot name fxgate's Redis (one clause), or None."""
    if is_sentinel(url):
        try:
            parse_sentinel(url)
        except ValueError as exc:
            return str(exc)
        return None
    if urlsplit(url).scheme not in SCHEMES:
        return "is not a redis://, rediss://, unix:// or redis+sentinel:// URL"
    return None


def has_password(url: str) -> bool:
    if is_sentinel(url):
        try:
            return parse_sentinel(url).password is not None
        except ValueError:
            return False
    return urlsplit(url).password is not None


def redacted(url: str) -> str:
    """The URL without its password, for logs, errors and ``config check --show``."""
    if is_sentinel(url):
        creds, at, rest = url.partition("://")[2].rpartition("@")
        if not at or ":" not in creds:
            return url
        scheme = url.partition("://")[0]
        return f"{scheme}://{creds.partition(':')[0]}:***@{rest}"
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        port = parts.port
    except ValueError:  # a malformed port: say nothing of what precedes the host
        return url.partition("://")[0] + "://***@" + url.rpartition("@")[2]
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))
