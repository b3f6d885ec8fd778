"""The browser's address, as far as it can be trusted, for rate limits.

Behind a reverse proxy every request comes from the proxy, so keying limits on
the TCP peer would put all users in one bucket; but X-Forwarded-For is written
by whoever sends the request, so it is believed only as far as it was written by
proxies we run (WORKBENCH_TRUSTED_PROXIES, CIDRs).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str | None) -> list[Network]:
    """Comma-separated addresses or CIDRs, e.g. "127.0.0.1, 10.0.0.0/8" (ValueError names a bad one)."""
    networks: list[Network] = []
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {item!r}") from None
    return networks


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The first address, from the right, that a trusted proxy did not add; the peer if none.

    Each proxy appends the address it received the request from, so the chain is
    read from the right, through our own proxies, to the first one we do not run.
    """
    if not proxies or not _trusted(peer, proxies) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer
