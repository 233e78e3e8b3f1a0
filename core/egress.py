"""Egress policy of provider `base_url`s (agent-config.md "Egress policy of base_url"; api.md §10.7).

A provider URL is a request this service makes on a tenant's behalf, so it must not reach the service's own
network. A host that is an IP address which is not globally routable (loopback, private, link-local,
unique-local, multicast, unspecified, reserved, the metadata address 169.254.169.254, and the IPv4 forms
embedded in IPv6 addresses), or a name resolving to one, is refused unless the host name, the address or
a network containing it is listed in `MAIMCONFIG_LLM_ALLOWED_HOSTS`.

Checked twice: when a configuration is written (`write_time_refusal`: IP literals and names that are
non-public by definition, such as `localhost`), and when the chat lane connects (`EgressCheckingBackend`:
the name is resolved once, every address is checked, and the connection goes to a checked address, so a
DNS answer changing between the check and the connection cannot bypass the policy).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that are not public by definition (RFC 6761 / 8375 and cloud metadata names): refused at write time.
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata.google.internal",
                "metadata")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")


class EgressRefused(Exception):
    """The provider host is not allowed by the egress policy. The message names no secret."""


@lru_cache(maxsize=8)
def _parse_allowed(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple]:
    names: set[str] = set()
    networks = []
    for entry in entries:
        entry = entry.strip().strip("[]").lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return frozenset(names), tuple(networks)


def allowed_hosts() -> tuple[frozenset[str], tuple]:
    return _parse_allowed(tuple(getattr(settings, "MAIMCONFIG_LLM_ALLOWED_HOSTS", ()) or ()))


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (and no non-public IPv4 address embedded in it)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None and not is_public(embedded):
        return False
    return address.is_global and not address.is_multicast


def address_allowed(address: IPAddress) -> bool:
    if is_public(address):
        return True
    _, networks = allowed_hosts()
    candidates = [address]
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        candidates.append(embedded)
    return any(candidate.version == network.version and candidate in network
               for candidate in candidates for network in networks)


def name_allowed(host: str) -> bool:
    names, _ = allowed_hosts()
    return host.lower().rstrip(".") in names


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES)


def write_time_refusal(url: str) -> str | None:
    """Why `url` may not be stored as a provider `base_url`, or None. Checks what needs no DNS: credentials
    in the URL, an IP literal that is not public, a name that is local by definition (all unless allowed)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return gettext("Enter a valid URL.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return gettext("The URL must not contain credentials (user:password@).")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return gettext("The URL must not contain a query (?…) or a fragment (#…).")
    if not host or name_allowed(host):
        return None
    address = _ip_literal(host)
    if address is not None:
        if address_allowed(address):
            return None
        return gettext("The host is not a public address; list it in MAIMCONFIG_LLM_ALLOWED_HOSTS to allow it.")
    if is_local_name(host):
        return gettext("The host is a local name; list it in MAIMCONFIG_LLM_ALLOWED_HOSTS to allow it.")
    return None


async def resolve_checked(host: str, port: int) -> str:
    """The address to connect to for `host`: every address the name resolves to must be allowed
    (a name listed in MAIMCONFIG_LLM_ALLOWED_HOSTS skips the check). Raises EgressRefused."""
    literal = _ip_literal(host)
    if literal is not None:
        if address_allowed(literal) or name_allowed(host):
            return str(literal)
        raise EgressRefused(gettext("The provider host is not a public address."))
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"The provider host could not be resolved ({exc.strerror}).") from None
    addresses = _unique(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos)
    if not addresses:
        raise OSError("The provider host could not be resolved.")
    if not name_allowed(host):
        refused = [a for a in addresses if not address_allowed(a)]
        if refused:
            raise EgressRefused(gettext("The provider host resolves to an address that is not public."))
    return str(addresses[0])


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    seen: list[IPAddress] = []
    for address in addresses:
        if address not in seen:
            seen.append(address)
    return seen
