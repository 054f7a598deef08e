"""Who is calling: the TCP peer, or the address a trusted proxy (an ingress) forwarded for it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network

Networks = Iterable[IPv4Network | IPv6Network]


def trusted_networks(setting: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """The comma-separated IPs and CIDRs of ``TRUSTED_PROXIES``; raises ValueError naming a bad one."""
    networks = []
    for part in filter(None, (p.strip() for p in setting.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _trusted(address: str, proxies: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Networks) -> str:
    """The caller's address for limits and logs.

    ``X-Forwarded-For`` is believed only when the peer is a trusted proxy, and then only as far as
    the proxies that appended to it are trusted: the right-most address that is not a trusted
    proxy is the one the outermost trusted proxy saw; anything left of it the caller wrote.
    """
    proxies = tuple(proxies)
    if peer is None or not forwarded_for or not _trusted(peer, proxies):
        return peer or "-"
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer  # every hop is a proxy of ours: the farthest one is the caller
