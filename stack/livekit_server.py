"""LiveKit server on loopback with loopback-only ICE (no public STUN, no external IP lookup)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from stack.gobuild import LIVEKIT_SERVER
from stack.layout import StackLayout
from stack.managed import BinaryService


def livekit_config(
    *,
    bind_ip: str,
    port: int,
    tcp_port: int,
    udp_port: int,
    api_key: str,
    api_secret: str,
    ip_cidr: str,
    also_loopback: bool = False,
    metrics_port: int | None = None,
    redis_address: str | None = None,
) -> dict[str, object]:
    """A server config that advertises only `bind_ip` (see ARCHITECTURE, network rule).

    `also_loopback` binds 127.0.0.1 too, for a server whose media is reached on
    `bind_ip` (a lab address, TLS mode) while the agent and the TLS proxy on this
    machine use loopback. With `redis_address` the node joins LiveKit's
    multi-node mode: nodes sharing one Redis route signalling to the node that
    hosts a room, and a new room goes to the node holding the fewest rooms.
    """
    binds = [bind_ip, "127.0.0.1"] if also_loopback and bind_ip != "127.0.0.1" else [bind_ip]
    # Prometheus metrics on `metrics_port`, on the same addresses: so only when those
    # are loopback (they carry room and participant counts, unauthenticated).
    metrics = (
        {"prometheus": {"port": metrics_port}} if metrics_port and binds == ["127.0.0.1"] else {}
    )
    cluster: dict[str, object] = (
        {
            "redis": {"address": redis_address},
            "node_selector": {"kind": "any", "sort_by": "rooms", "algorithm": "lowest"},
        }
        if redis_address
        else {}
    )
    return {
        **metrics,
        **cluster,
        "port": port,
        "bind_addresses": binds,
        "rtc": {
            "tcp_port": tcp_port,
            "udp_port": udp_port,
            "use_external_ip": False,  # true would ask a public STUN server
            "node_ip": bind_ip,
            "enable_loopback_candidate": "127.0.0.1" in binds,
            "ips": {"includes": [ip_cidr, *(["127.0.0.1/32"] if len(binds) > 1 else [])]},
            # Clients otherwise default to Google's STUN servers; the server's
            # own ICE port answers binding requests.
            "stun_servers": [f"{bind_ip}:{udp_port}"],
        },
        "keys": {api_key: api_secret},
        "logging": {"level": "info"},
    }


class LiveKitService(BinaryService):
    """The WebRTC SFU: rooms, tracks, agent dispatch.

    `livekit` alone; in multi-node mode (`redis_address`) node n from 2 is
    `livekit-<n>` with ports of its own (`node_ports`).
    """

    name_prefix = "livekit"
    port_setting = "WORKBENCH_LIVEKIT_PORT"
    scheme = "ws"
    binary_spec = LIVEKIT_SERVER

    def __init__(
        self,
        layout: StackLayout,
        *,
        port: int,
        tcp_port: int,
        udp_port: int,
        api_key: str,
        api_secret: str,
        media_ip: str = "127.0.0.1",
        metrics_port: int | None = None,
        node: int = 1,
        redis_address: str | None = None,
    ) -> None:
        self.name = self.name_prefix + (f"-{node}" if node > 1 else "")
        super().__init__(layout, port=port)
        self.node, self.redis_address = node, redis_address
        # Served only when every address it binds is loopback (livekit_config).
        self.metrics_port = metrics_port if media_ip == "127.0.0.1" else None
        self.tcp_port, self.udp_port = tcp_port, udp_port
        # Where browsers reach its media (ICE): loopback, or the lab address in TLS mode.
        self.media_ip = media_ip
        self._key, self._secret = api_key, api_secret
        self.config_path = layout.run_dir / f"{self.name}.yaml"

    def tcp_ports(self) -> Mapping[int, str]:
        metrics = {self.metrics_port: "WORKBENCH_LIVEKIT_METRICS_PORT"} if self.metrics_port else {}
        return {**super().tcp_ports(), self.tcp_port: "WORKBENCH_LIVEKIT_TCP_PORT", **metrics}

    def udp_ports(self) -> Mapping[int, str]:
        return {self.udp_port: "WORKBENCH_LIVEKIT_UDP_PORT"}

    def command(self, binary: Path) -> list[str]:
        config = livekit_config(
            bind_ip=self.media_ip,
            port=self.port,
            tcp_port=self.tcp_port,
            udp_port=self.udp_port,
            api_key=self._key,
            api_secret=self._secret,
            ip_cidr=f"{self.media_ip}/32",
            also_loopback=True,
            metrics_port=self.metrics_port,
            redis_address=self.redis_address,
        )
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.config_path.chmod(0o600)  # holds the API secret
        return [str(binary), "--config", str(self.config_path)]


# Node n (from 2) of a multi-node stack takes the first node's ports plus this times n - 1.
NODE_PORT_STEP = 10


def node_ports(first: Mapping[str, int], node: int) -> dict[str, int]:
    """The ports of node `node` given the first node's (port, tcp_port, udp_port, metrics_port)."""
    steps = {"metrics_port": 1}
    return {
        key: value + steps.get(key, NODE_PORT_STEP) * (node - 1) for key, value in first.items()
    }
