"""Which address rate limits key on: the peer, or the chain our own proxies wrote."""

from __future__ import annotations

import pytest

from dashboards.client_address import client_address, parse_networks

pytestmark = pytest.mark.unit

PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8")


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("203.0.113.5", "198.51.100.1", []) == "203.0.113.5"


def test_a_forged_header_from_an_untrusted_peer_is_ignored() -> None:
    assert client_address("203.0.113.5", "1.2.3.4", PROXIES) == "203.0.113.5"


def test_behind_our_proxies_the_first_untrusted_hop_from_the_right() -> None:
    # The client forged "1.2.3.4"; our proxy appended the real peer it saw.
    assert client_address("127.0.0.1", "1.2.3.4, 198.51.100.7", PROXIES) == "198.51.100.7"
    assert client_address("127.0.0.1", "198.51.100.7, 10.1.2.3", PROXIES) == "198.51.100.7"
    assert client_address("127.0.0.1", None, PROXIES) == "127.0.0.1"


def test_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="not an address or network: 'lab-proxy'"):
        parse_networks("10.0.0.1, lab-proxy")
