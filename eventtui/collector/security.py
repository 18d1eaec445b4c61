"""Who may talk to the collector: Origin, Host and token checks shared by both listeners.

A web page on any site can open a websocket to localhost, and DNS rebinding can point a foreign name
at 127.0.0.1; these checks are what stops that (README.md, "Wire protocol"; docs/ARCHITECTURE.md).

May import: config.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import parse_qs, urlsplit

from eventtui.config import CollectorConfig

_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_name(value: str) -> str:
    """ "example.com:8765" -> "example.com"; "[::1]:8765" -> "::1"."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_local_origin(origin: str) -> bool:
    parts = urlsplit(origin.strip().lower())
    return parts.scheme in ("http", "https") and (parts.hostname or "") in _LOCAL_NAMES


def check_single(hosts: list[str], origins: list[str]) -> str | None:
    """Two Host or Origin headers are ambiguous: which one a proxy or browser meant is unknowable."""
    if len(hosts) > 1:
        return "more than one Host header"
    if len(origins) > 1:
        return "more than one Origin header"
    return None


def check_origin(origin: str | None, config: CollectorConfig) -> str | None:
    """None if this Origin may connect, else the reason it may not."""
    if origin is None:
        return None  # not a browser: curl, SDKs, eventtui send
    allowed = config.allowed_origins
    if "*" in allowed or origin in allowed or origin.rstrip("/") in allowed:
        return None
    if is_local_origin(origin):
        return None
    return (
        f"Origin {origin!r} is not allowed; add it to [collector] allowed_origins "
        "to let that site send events"
    )


def check_host(host_header: str | None, config: CollectorConfig) -> str | None:
    """None if the Host header names this collector, else the reason (DNS rebinding guard)."""
    if host_header is None:
        return None  # HTTP/1.0 clients; a browser always sends Host
    name = _host_name(host_header)
    if name in _LOCAL_NAMES or name in config.allowed_hosts or name == config.host.lower():
        return None
    # A rebinding attack needs a domain name; a bare IP literal names this machine on purpose.
    if _is_ip(name) and config.host not in _LOCAL_NAMES:
        return None
    return (
        f"Host {host_header!r} is not this collector; add it to [collector] allowed_hosts "
        "if you reach eventtui by that name"
    )


def check_token(path: str, authorization: str | None, config: CollectorConfig) -> str | None:
    """None if no token is configured or the request carries it (`?token=` or a Bearer header)."""
    if not config.token:
        return None
    offered = parse_qs(urlsplit(path).query).get("token", [""])[0]
    if authorization and authorization.lower().startswith("bearer "):
        offered = authorization[7:].strip()
    if hmac.compare_digest(offered.encode(), config.token.encode()):
        return None
    return "missing or wrong token (send ?token=... or an Authorization: Bearer header)"
