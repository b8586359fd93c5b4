"""Where a reference may be fetched from: public addresses, and the W&B host itself.

A manifest's reference entries carry URLs that whoever logged the artifact chose, so one
(or a redirect from it) could point at the runner itself, its private network or the
cloud's metadata service (169.254.169.254), whose answer would land in `path`. Every
connection made for a reference goes through :class:`GuardedAdapter`, which resolves the
host once, refuses it when any of its addresses is not public, and connects to the very
address it checked: a name that resolves elsewhere a moment later (DNS rebinding) cannot
slip past. requests follows redirects (at most :data:`MAX_REDIRECTS`) through the same
adapter, so every hop is checked before it is connected to.

The origin of `base-url` (scheme, host and port) is exempt: the user chose it, and W&B
Server on an internal network serves files from itself. URLs that W&B hands out for its
own storage (the manifest, stored files) do not come through here.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from action.errors import InternalAddressError
from action.http import make_session

MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_NAMES = frozenset({"metadata.google.internal"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")  # every public IPv6 address is in here

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Origin = tuple[str, str, int]
Resolve = Callable[[str, int], list[str]]  # (host, port) -> addresses


def origin(url: str) -> Origin:
    """``(scheme, host, port)`` of ``url``, the port filled in from the scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, _plain(parts.hostname or ""), parts.port or DEFAULT_PORTS.get(scheme, 0)


def refusal(address: IPAddress) -> str:
    """Why ``address`` is not one to fetch a reference from, or ``""`` when it is public."""
    address = _as_ipv4(address)
    checks = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (not address.is_global, "a shared or reserved address"),  # 100.64/10, 240/4, ...
        # what Python still calls global outside 2000::/3 (site-local fec0::/10, ...)
        (address.version == 6 and address not in _GLOBAL_UNICAST, "a reserved address"),
    )
    return next((reason for hit, reason in checks if hit), "")


def resolve(host: str, port: int) -> list[str]:
    """The addresses the runner's resolver gives for ``host``."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def vetted_address(host: str, port: int, resolver: Resolve = resolve) -> str:
    """The address to connect to for ``host``: resolved once, every answer checked.

    Raises InternalAddressError for a host that is, or resolves to, any address that is
    not public; requests' ConnectionError (retried) when the name does not resolve."""
    if host in METADATA_NAMES:
        raise InternalAddressError(f"{host}, a cloud metadata service")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a) for a in resolver(host, port)]
        except (OSError, UnicodeError) as exc:
            raise requests.ConnectionError(f"cannot resolve {host}: {exc}") from exc
    for address in addresses:
        reason = refusal(address)
        if reason:
            shown = host if str(address) == host else f"{host} ({address})"
            raise InternalAddressError(f"{shown}, {reason}")
    return str(addresses[0])


class GuardedAdapter(HTTPAdapter):
    """Connects to public addresses only, and to the ``trusted`` origin."""

    def __init__(self, trusted: Origin, resolver: Resolve = resolve, **kwargs: Any) -> None:
        self._trusted = trusted
        self._resolver = resolver
        super().__init__(**kwargs)

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        """requests' hook, called on every hop: the connection goes to an address, but the
        server needs the name (set anew, as requests copies headers into a redirect)."""
        request.headers["Host"] = _host_header(request.url or "")

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        """requests' hook for choosing the connection: the checked address, and for TLS
        the name (SNI and the certificate's check use ``server_hostname``)."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        scheme, host = host_params["scheme"], _plain(host_params["host"])
        port = host_params["port"] or DEFAULT_PORTS.get(scheme, 0)
        if (scheme, host, port) != self._trusted:
            host_params["host"] = vetted_address(host, port, self._resolver)
            if scheme == "https":
                pool_kwargs["server_hostname"] = host  # type: ignore[typeddict-unknown-key]
        return host_params, pool_kwargs


def reference_session(pool_size: int, base_url: str) -> requests.Session:
    """A session for references: every connection and redirect through the guard."""
    session = make_session(pool_size)
    adapter = GuardedAdapter(
        origin(base_url), pool_connections=4, pool_maxsize=pool_size, max_retries=0
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.max_redirects = MAX_REDIRECTS
    return session


def _as_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), else ``address``."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is not None:
            return inner
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _plain(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _host_header(url: str) -> str:
    """The ``Host`` header http.client would send for ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port and parts.port != DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{parts.port}"
    return host
