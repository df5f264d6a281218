"""Which pages may open the site's websockets: those of the site itself, compared exactly on
scheme, host and port, and the origins of CSRF_TRUSTED_ORIGINS. A page of another site, or of
this host on another port or scheme, is refused before the handshake."""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": "80", "https": "443"}
# What Django itself allows with DEBUG on and ALLOWED_HOSTS empty.
LOCAL_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


def origin_normalised(origin: str) -> str | None:
    """scheme://host[:port] in lower case, without the scheme's default port; None if this is
    not an http(s) origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port_text = "" if port is None or str(port) == DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{port_text}"


def _headers(scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", ())}


def _is_secure(scope, headers: dict[bytes, bytes]) -> bool:
    """HTTPS as the browser sees it: the server's own scheme, or the proxy's header when the
    site trusts one (SECURE_PROXY_SSL_HEADER, as Django reads it for requests)."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy:
        return False
    name, expected = proxy
    header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
    value = headers.get(header, b"").decode("latin-1").split(",")[0].strip()
    return value == expected


def own_origin(scope) -> str | None:
    """The origin of the page that would open this socket if it is one of ours: the scheme the
    browser used and the Host it asked for (which must be one of ALLOWED_HOSTS)."""
    headers = _headers(scope)
    host = headers.get(b"host", b"").decode("latin-1").strip()
    if not host:
        return None
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (
        ["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []
    )
    if not domain or not validate_host(domain, allowed):
        return None
    scheme = "https" if _is_secure(scope, headers) else "http"
    return origin_normalised(f"{scheme}://{host}")


def origin_allowed(scope) -> bool:
    """Whether the socket's Origin header names this site exactly, or a trusted origin."""
    headers = _headers(scope)
    raw = headers.get(b"origin")
    if raw is None:
        return False
    origin = origin_normalised(raw.decode("latin-1"))
    if origin is None:
        return False
    trusted = {origin_normalised(o) for o in settings.CSRF_TRUSTED_ORIGINS}
    return origin == own_origin(scope) or origin in trusted


class SameOriginValidator:
    """ASGI middleware: a websocket whose Origin is not this site's is refused."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
