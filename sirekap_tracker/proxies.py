"""Who is asking: the client's address behind our proxy, and whether a request is internal.

gunicorn is reached through nginx (docker-compose.yml), so REMOTE_ADDR is nginx's address and the
client's is the last one nginx appended to X-Forwarded-For. That header is believed only from
the proxy's addresses (FORWARDED_ALLOW_IPS, which gunicorn reads too): anyone else could write
any address into it.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _from_proxy(address: str) -> bool:
    found = _address(address)
    return found is not None and any(
        allowed == "*" or found in ipaddress.ip_network(allowed, strict=False)
        for allowed in settings.FORWARDED_ALLOW_IPS
    )


def client_address(request: HttpRequest) -> str:
    """The client's IP address: the peer's, or behind our proxy the one the proxy appended."""
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and _from_proxy(peer):
        last = forwarded.rsplit(",", 1)[-1].strip()
        if _address(last) is not None:
            return last
    return peer


def is_internal(request: HttpRequest) -> bool:
    """Asked straight from a loopback or private address, not through the proxy: a container's
    health check, the host's monitoring. A request through nginx always carries X-Forwarded-For
    (nginx, itself on a private address, adds it), so a visitor from outside is never internal
    whatever they put in their own headers."""
    if "HTTP_X_FORWARDED_FOR" in request.META:
        return False
    peer = _address(request.META.get("REMOTE_ADDR", ""))
    return peer is not None and (peer.is_loopback or peer.is_private)
