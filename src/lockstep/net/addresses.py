"""Which addresses an outbound call may reach: public ones, plus the ranges the server allows.

A host is judged by the addresses it resolves to, never by its spelling: ``0x7f.1``,
``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]`` and ``localhost`` are all loopback. IPv6
forms that carry an IPv4 address (IPv4-mapped, 6to4, NAT64, Teredo) are judged by that address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the setting an operator changes to let outbound calls reach more than public addresses
ALLOW_SETTING = "LOCKSTEP_OUTBOUND_ALLOW"
#: IPv4 as the C library's inet_aton reads it: 1 to 4 parts, each decimal, octal or hex
_LOOSE_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells without DNS (any IPv4 spelling a resolver accepts, IPv6 with
    or without brackets), or None for a name."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _LOOSE_IPV4.match(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and would reach, if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` non-public ("loopback", "link-local", "private", …), or None when it
    is a public address."""
    target = _embedded_ipv4(ip) or ip
    checks = (
        (target.is_unspecified, "unspecified"),
        (target.is_loopback, "loopback"),
        (target.is_link_local, "link-local"),
        (target.is_multicast, "multicast"),
        (target.is_private, "private"),
        (target.is_reserved, "reserved"),
        (not target.is_global, "non-public"),
    )
    return next((name for found, name in checks if found), None)


@dataclass(frozen=True)
class OutboundPolicy:
    """Public addresses, plus the ranges in ``allow`` (``LOCKSTEP_OUTBOUND_ALLOW``)."""

    allow: tuple[IPNetwork, ...] = ()

    def allows(self, ip: IPAddress) -> bool:
        return self.refusal(ip) is None

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be reached ("a loopback address", …), or None when it may."""
        embedded = _embedded_ipv4(ip)
        if any(a in net for net in self.allow for a in (ip, embedded) if a is not None):
            return None
        found = kind(ip)
        if found is None:
            return None
        return f"{'an' if found[0] in 'aeiou' else 'a'} {found} address"

    def suggestion(self, ip: IPAddress) -> str:
        """The setting that would allow ``ip``, e.g. ``LOCKSTEP_OUTBOUND_ALLOW=127.0.0.1/32``."""
        target = _embedded_ipv4(ip) or ip
        return f"{ALLOW_SETTING}={target}/{target.max_prefixlen}"


class AddressRefused(Exception):
    """``host`` may not be reached; ``reason`` is one line naming the address and the setting."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` stands for, in the resolver's order (a literal stands for
    itself)."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


async def allowed_addresses(host: str, port: int, policy: OutboundPolicy) -> list[IPAddress]:
    """The addresses of ``host`` that ``policy`` allows, to connect to exactly these; raises
    ``AddressRefused`` when there is none (a name naming what it resolved to)."""
    addresses = await resolve(host, port)
    allowed = [ip for ip in addresses if policy.allows(ip)]
    if allowed:
        return allowed
    if not addresses:
        raise AddressRefused(host, f"{host} resolves to no address")
    first = addresses[0]
    what = policy.refusal(first)
    said = f"{first} is {what}" if literal_address(host) else f"{host} resolves to {first}, {what}"
    raise AddressRefused(host, f"{said}; to allow it set {policy.suggestion(first)}")
